"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from rag.pipeline import QuestionError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the client should see as it is: status, machine code, readable message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON response every error path answers with."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class JsonCORSMiddleware(CORSMiddleware):
    """CORS whose refused preflights answer in the shared error shape, not plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        reason = bytes(response.body).decode().lower()
        return error_response(response.status_code, "cors_rejected", f"CORS: {reason}", headers)


def _field(loc: tuple | list) -> str:
    """``("body", "top_k")`` -> ``top_k``; the body itself reads as ``body``."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def validation_message(exc: RequestValidationError) -> str:
    """Pydantic's errors as one readable sentence per field, without input echoes."""
    parts = []
    for err in exc.errors():
        msg = err.get("msg", "is invalid")
        field = _field(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            parts.append("the body is not valid JSON")
        elif field == "body":
            parts.append(
                'the body must be a JSON object such as {"question": "..."}, '
                "sent as Content-Type: application/json"
            )
        elif err.get("type") == "missing":
            parts.append(f"{field} is required")
        else:
            parts.append(f"{field}: {msg[0].lower() + msg[1:]}")
    return "; ".join(dict.fromkeys(parts)) or "the request is invalid"


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _question_error(_: Request, exc: QuestionError) -> JSONResponse:
    return error_response(422, "invalid_question", str(exc))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "invalid_request", validation_message(exc))


def unreadable_body(cause: BaseException | None) -> str | None:
    """Why a JSON body could not be parsed, when FastAPI's 400 was caused by its content."""
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid UTF-8: send the JSON encoded as UTF-8"
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply"
    if isinstance(cause, ValueError):  # e.g. an integer of more than 4,300 digits
        return f"the body is not valid JSON ({str(cause).split(';')[0].split(':')[0].lower()})"
    return None


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and (reason := unreadable_body(exc.__cause__)):
        return error_response(422, "invalid_request", reason)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        message = f"there is no {request.method} {request.url.path} endpoint"
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(exc.status_code, code, message, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette names only the first route's)."""
    scope = {**request.scope, "method": "GET"}
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        if route.matches(scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    if "GET" in methods:
        methods.add("HEAD")
    if request.url.path.startswith("/documents/") and request.url.path.endswith("/view"):
        methods &= {"GET", "HEAD"}  # {doc_id:path} matches a view's path, but writes refuse it
    return sorted(methods)


def _routes(routes: list) -> list:
    """The routes, those of included routers flattened (FastAPI keeps them as routers)."""
    flat = []
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        flat += _routes(inner) if inner is not None else [route]
    return flat


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "the server failed to answer; try again later")


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to :func:`error_response`."""
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(QuestionError, _question_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
