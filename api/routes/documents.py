"""The documents answers cite: the list, one document's text, a page highlighting a span; and,
with the admin token, adding, replacing and removing them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.schemas import (
    WRITE_ERRORS,
    Deleted,
    DocumentDetail,
    DocumentList,
    TextUpload,
    WriteResult,
    error_responses,
)
from api.security import AdminDep
from api.service import ServiceDep
from api.views import render_view

router = APIRouter(tags=["documents"])


async def _not_the_view(request: Request, doc_id: str) -> None:
    """A 405 for writes to a view's path: /documents/{id}/view is the GET page only (checked
    before the token: no token would help)."""
    if doc_id.endswith("/view") or doc_id == "view":
        raise ApiError(
            405,
            "method_not_allowed",
            f"there is no {request.method} /documents/{{doc_id}}/view endpoint: the view is "
            "read-only",
            {"Allow": "GET, HEAD"},
        )


_WRITE_CHECKS = [Depends(_not_the_view), AdminDep]


def _upload_body(files: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of an upload: multipart files, or a JSON text."""
    name = next(iter(files))
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [name],
                        "properties": {
                            **files,
                            "title": {"type": "string", "description": "With one file only."},
                        },
                    }
                },
                "application/json": {"schema": TextUpload.model_json_schema()},
            },
        }
    }


_FILES = {
    "files": {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": "Files ending in .txt, .md, .html, .htm, .pdf or .docx; a file's name, "
        "without a path, is its doc_id.",
    }
}
_FILE = {"file": {"type": "string", "format": "binary", "description": "The new version."}}
_WRITTEN = {
    "description": "Every document was already there, with the same bytes",
    "model": WriteResult,
}
_QUEUED = {
    "description": "Large files: a background job indexes them; poll the Location header",
    "model": WriteResult,
    "headers": {"Location": {"description": "/jobs/{id}", "schema": {"type": "string"}}},
}


@router.get("/documents", response_model=DocumentList, responses=error_responses(503))
def documents(svc: ServiceDep) -> DocumentList:
    """Every document: id, title, format, pages, length in characters, indexed chunks, origin,
    hash, and when it was added and last updated."""
    return svc.listing()


@router.post(
    "/documents",
    status_code=201,
    response_model=WriteResult,
    responses={
        200: _WRITTEN,
        202: _QUEUED,
        **error_responses(401, 403, 408, 409, 413, 415, 422, 503, wording=WRITE_ERRORS),
    },
    dependencies=[AdminDep],
    openapi_extra=_upload_body(_FILES),
)
async def add(request: Request, response: Response, svc: ServiceDep) -> WriteResult:
    """Add documents (admin token): multipart ``files``, or JSON ``{"text": ...}``. Every file
    is checked before any is written; 201 once they are searchable, or 202 with a job for
    files over ``upload_sync_bytes`` together. The same bytes again: 200, nothing changes."""
    status, result = await svc.require_writable().add(request)
    response.status_code = status
    if result.job is not None:
        response.headers["Location"] = f"/jobs/{result.job.id}"
    return result


# Registered before /documents/{doc_id:path}, whose path pattern would swallow "/view".
@router.get(
    "/documents/{doc_id:path}/view",
    response_class=HTMLResponse,
    responses=error_responses(404, 422, 503),
)
def view(
    doc_id: str,
    svc: ServiceDep,
    start: int | None = Query(None, ge=0, description="First character to highlight."),
    end: int | None = Query(None, ge=0, description="One past the last one."),
) -> HTMLResponse:
    """The document as a page, ``text[start:end]`` highlighted and scrolled into view."""
    doc = svc.document(doc_id)
    if (start is None) != (end is None):
        raise ApiError(422, "invalid_request", "give both start and end, or neither")
    if start is not None and end is not None:
        if start >= end:
            raise ApiError(422, "invalid_request", "start must be less than end")
        if end > len(doc.text):
            raise ApiError(
                404,
                "span_out_of_range",
                f"the span {start}-{end} is outside the document ({len(doc.text)} characters)",
            )
    return render_view(doc, start, end)


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentDetail,
    responses=error_responses(404, 503),
)
def document(doc_id: str, svc: ServiceDep) -> DocumentDetail:
    """One document's full text and metadata."""
    return svc.detail(doc_id)


@router.put(
    "/documents/{doc_id:path}",
    response_model=WriteResult,
    responses=error_responses(401, 403, 404, 408, 413, 415, 422, 503, wording=WRITE_ERRORS),
    dependencies=_WRITE_CHECKS,
    openapi_extra=_upload_body(_FILE),
)
async def replace(doc_id: str, request: Request, svc: ServiceDep) -> WriteResult:
    """Replace a document (admin token) with a new file (multipart ``file``) or JSON text;
    the answer comes once the new version is searchable."""
    return await svc.require_writable().replace(request, doc_id)


@router.delete(
    "/documents/{doc_id:path}",
    response_model=Deleted,
    responses=error_responses(401, 403, 404, 503, wording=WRITE_ERRORS),
    dependencies=_WRITE_CHECKS,
)
async def remove(doc_id: str, svc: ServiceDep) -> Deleted:
    """Remove a document (admin token); the answer comes once no answer can cite it."""
    return await svc.require_writable().remove(doc_id)
