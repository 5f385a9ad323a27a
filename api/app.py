"""Verbatim's HTTP service: ask, browse the cited documents, health, metrics, the chat widget."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.docs import install_offline_docs
from api.errors import ApiError, JsonCORSMiddleware, install_error_handlers
from api.limits import BodySizeLimit, Limiter, Overloaded
from api.metrics import Metrics, MetricsMiddleware
from api.schemas import (
    ASK_EXAMPLES,
    AskRequest,
    AskResponse,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    Status,
    error_responses,
    view_url,
)
from api.views import render_view
from rag.config import Settings, get_settings
from rag.documents import Document
from rag.pipeline import AskPipeline, QuestionError, validate_question

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestId:
    """ASGI middleware: give each request an id (or keep a sane incoming X-Request-ID)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class Service:
    """What the endpoints share: the pipeline, its readiness, the limiter, the metrics."""

    def __init__(self, settings: Settings, pipeline: AskPipeline):
        self.settings, self.pipeline = settings, pipeline
        self.metrics = Metrics()
        self.ready = pipeline.ready
        self.failure: str | None = None
        self.limiter: Limiter | None = None
        self._listing: DocumentList | None = None
        self._summaries: dict[str, DocumentSummary] = {}

    async def warm_up(self) -> None:
        """Load the index and models once, off the event loop."""
        try:
            await anyio.to_thread.run_sync(self.pipeline.warm_up, abandon_on_cancel=True)
        except Exception as exc:
            log.exception("warm-up failed")
            self.failure = f"loading the index and models failed: {exc}"
        else:
            self.ready = True
            log.info("ready: %d documents", len(self.pipeline.documents))

    def require_ready(self) -> None:
        if not self.ready:
            message = self.failure or "the index and models are still loading; try again shortly"
            raise ApiError(503, "not_ready", message, {"Retry-After": "5"})

    def document(self, doc_id: str) -> Document:
        self.require_ready()
        doc = self.pipeline.document(doc_id)
        if doc is None:
            raise ApiError(404, "unknown_document", f"no document has the id {doc_id!r}")
        return doc

    def listing(self) -> DocumentList:
        """Every document's summary, computed once (the index does not change while serving)."""
        self.require_ready()
        if self._listing is None:
            docs = [
                DocumentSummary(
                    doc_id=d.doc_id,
                    title=d.title,
                    length=len(d.text),
                    chunks=self.pipeline.chunk_count(d.doc_id),
                    url=view_url(d.doc_id),
                )
                for d in self.pipeline.documents
            ]
            self._listing = DocumentList(count=len(docs), documents=docs)
            self._summaries = {d.doc_id: d for d in docs}
        return self._listing

    def detail(self, doc_id: str) -> DocumentDetail:
        doc = self.document(doc_id)
        self.listing()
        return DocumentDetail(
            **self._summaries[doc_id].model_dump(),
            content_hash=doc.content_hash,
            excluded=list(doc.excluded),
            text=doc.text,
        )

    async def ask(self, body: AskRequest, request_id: str) -> AskResponse:
        self.require_ready()
        question = validate_question(body.question, self.settings.max_question_chars)
        assert self.limiter is not None
        try:
            answer = await self.limiter.run(self.pipeline.ask, question, body.mode, body.top_k)
        except Overloaded:
            self.metrics.rejected.inc()
            raise
        except QuestionError:
            raise
        except Exception as exc:  # answered here so CORS and metrics middleware still see it
            log.exception("request %s: answering %r failed", request_id, question)
            raise ApiError(500, "internal_error", "answering failed; try again later") from exc
        self.metrics.observe_answer(answer.abstained, answer.timings_ms.model_dump())
        return AskResponse.of(answer, request_id)


def create_app(settings: Settings | None = None, pipeline: AskPipeline | None = None) -> FastAPI:
    """The ASGI app. The pipeline warms up in the background at start-up; /ready says when."""
    settings = settings or get_settings()
    svc = Service(settings, pipeline or AskPipeline(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.limiter = limiter = Limiter(settings.max_in_flight, settings.max_queue)
        svc.metrics.in_flight.set_function(lambda: limiter.in_flight)
        svc.metrics.queued.set_function(lambda: limiter.waiting)
        task = None if svc.ready else asyncio.create_task(svc.warm_up())
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        title="Verbatim",
        version="0.1.0",
        summary="Extractive question answering: answers that stand verbatim in your documents.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    app.state.service = svc
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestId)
    app.add_middleware(
        JsonCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics, router=app.router)

    @app.post(
        "/ask", response_model=AskResponse, tags=["ask"], responses=error_responses(413, 422, 503)
    )
    async def ask(
        body: Annotated[AskRequest, Body(openapi_examples=ASK_EXAMPLES)], request: Request
    ) -> AskResponse:
        """Answer a question with words that stand verbatim in a document, or abstain."""
        return await svc.ask(body, request.state.request_id)

    @app.get(
        "/documents",
        response_model=DocumentList,
        tags=["documents"],
        responses=error_responses(503),
    )
    def documents() -> DocumentList:
        """Every document: id, title, length in characters, number of indexed chunks."""
        return svc.listing()

    @app.get(
        "/documents/{doc_id:path}/view",
        response_class=HTMLResponse,
        tags=["documents"],
        responses=error_responses(404, 422, 503),
    )
    def view(
        doc_id: str,
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

    @app.get(
        "/documents/{doc_id:path}",
        response_model=DocumentDetail,
        tags=["documents"],
        responses=error_responses(404, 503),
    )
    def document(doc_id: str) -> DocumentDetail:
        """One document's full text and metadata."""
        return svc.detail(doc_id)

    @app.get("/health", response_model=Status, tags=["operations"])
    async def health() -> Status:
        """The process is alive (it may still be loading)."""
        return Status(status="ok")

    @app.get("/ready", response_model=Status, tags=["operations"], responses=error_responses(503))
    async def ready() -> Status:
        """The index and models are loaded: 200, else 503."""
        svc.require_ready()
        return Status(status="ready")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(svc.metrics.render(), media_type=svc.metrics.content_type)

    @app.get("/widget.js", include_in_schema=False)
    async def widget() -> FileResponse:
        return FileResponse(
            STATIC / "widget.js",
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/", include_in_schema=False)
    async def demo() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")

    return app


def app_from_env() -> FastAPI:
    """The app over the settings of the environment (``VERBATIM_*``): uvicorn's factory."""
    return create_app(get_settings())
