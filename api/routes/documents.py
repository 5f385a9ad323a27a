"""The documents answers cite: the list, one document's text, a page highlighting a span."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.schemas import DocumentDetail, DocumentList, error_responses
from api.service import ServiceDep
from api.views import render_view

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentList, responses=error_responses(503))
def documents(svc: ServiceDep) -> DocumentList:
    """Every document: id, title, length in characters, number of indexed chunks."""
    return svc.listing()


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
