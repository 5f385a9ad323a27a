"""What the routers share: the pipeline, its readiness, the limiter, the metrics, the writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request

from api.errors import ApiError
from api.limits import ClientGone, Overloaded, RateLimited, RateLimiter
from api.metrics import Metrics
from api.schemas import (
    AskRequest,
    AskResponse,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    view_url,
)
from api.security import check_bearer
from api.worker import BatchingWorker
from api.writes import Writes
from rag.config import Settings
from rag.documents import Document
from rag.pipeline import Ask, AskPipeline, QuestionError

log = logging.getLogger(__name__)


class Service:
    """The pipeline behind the endpoints, with its readiness, back-pressure and metrics."""

    def __init__(
        self,
        settings: Settings,
        pipeline: AskPipeline,
        on_failure: Callable[[str], None] | None = None,
    ):
        self.settings, self.pipeline = settings, pipeline
        self.metrics = Metrics()
        self.ready = pipeline.ready
        # Why start-up failed, for the log and the console only: it may name server paths.
        self.failure: str | None = None
        self.on_failure = on_failure
        s = settings
        self.worker = BatchingWorker(pipeline, s.max_in_flight, s.batch_window_ms, s.max_queue)
        self.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        self.writes = Writes(settings, pipeline)
        self._listing: DocumentList | None = None
        self._listing_generation = -1
        self._summaries: dict[str, DocumentSummary] = {}

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """The app's lifespan: the inference worker, and the index and models loading in the
        background."""
        worker = self.worker
        self.metrics.in_flight.set_function(lambda: worker.busy)
        self.metrics.queued.set_function(lambda: worker.waiting)
        worker.start()
        task = None if self.ready else asyncio.create_task(self.warm_up())
        yield
        if task is not None:
            task.cancel()
        await anyio.to_thread.run_sync(worker.stop)
        if self.pipeline.store is not None:
            self.pipeline.store.close()
        await anyio.to_thread.run_sync(self.writes.close)

    async def warm_up(self) -> None:
        """Load the index and models once, off the event loop."""
        try:
            await anyio.to_thread.run_sync(self.pipeline.warm_up, abandon_on_cancel=True)
        except Exception as exc:
            log.exception("warm-up failed")
            self.failure = f"loading the index and models failed: {exc}"
            if self.on_failure is not None:
                self.on_failure(self.failure)
        else:
            self.ready = True
            log.info("ready: %d documents", len(self.pipeline.documents))

    def require_alive(self) -> None:
        """Raise a 503 (without Retry-After: waiting will not help) if start-up failed."""
        if self.failure is not None:
            message = "start-up failed: the index and models could not be loaded (see the log)"
            raise ApiError(503, "startup_failed", message)

    def require_ready(self) -> None:
        self.require_alive()
        if not self.ready:
            message = "the index and models are still loading; try again shortly"
            raise ApiError(503, "not_ready", message, {"Retry-After": "5"})

    def require_metrics_token(self, authorization: str | None) -> None:
        if self.settings.metrics_token is not None:
            check_bearer(authorization, self.settings.metrics_token.get_secret_value())

    def require_writable(self) -> Writes:
        """The writes, once the index they change is loaded."""
        self.require_ready()
        return self.writes

    def catch_up(self) -> None:
        """Apply changes another process committed (the next /ask batch would too), so reads
        agree with the store; cheap when there are none. Call it off the event loop."""
        store = self.pipeline.store
        if store is not None and store.docstore.generation() != store.generation:
            self.pipeline.refresh()

    def document(self, doc_id: str) -> Document:
        self.require_ready()
        self.catch_up()
        doc = self.pipeline.document(doc_id)
        if doc is None:
            raise ApiError(404, "unknown_document", f"no document has the id {doc_id!r}")
        return doc

    def listing(self) -> DocumentList:
        """Every searchable document's summary, computed again when the index changes."""
        self.require_ready()
        self.catch_up()
        store = self.pipeline.store
        assert store is not None
        generation = store.generation  # read first: a refresh after it means computing again
        if self._listing is None or self._listing_generation != generation:
            documents, counts = store.documents, store.chunk_counts()
            docs = [
                DocumentSummary(
                    doc_id=r.doc_id,
                    title=documents[r.doc_id].title,
                    length=len(documents[r.doc_id].text),
                    chunks=counts.get(r.doc_id, 0),
                    url=view_url(r.doc_id),
                    format=r.format,
                    pages=r.pages,
                    origin=r.origin,  # type: ignore[arg-type]
                    sha256=r.sha256,
                    added_at=r.added_at,
                    updated_at=r.updated_at,
                )
                for r in store.docstore.records()
                if r.doc_id in documents
            ]
            self._summaries = {d.doc_id: d for d in docs}
            self._listing = DocumentList(count=len(docs), documents=docs)
            self._listing_generation = generation
        return self._listing

    def detail(self, doc_id: str) -> DocumentDetail:
        doc = self.document(doc_id)
        self.listing()
        summary = self._summaries.get(doc_id)
        if summary is None:  # removed between the two reads
            raise ApiError(404, "unknown_document", f"no document has the id {doc_id!r}")
        return DocumentDetail(
            **summary.model_dump(),
            content_hash=doc.content_hash,
            excluded=list(doc.excluded),
            text=doc.text,
        )

    async def ask(self, body: AskRequest, request: Request) -> AskResponse:
        """The pipeline's answer; it validates the question (QuestionError: a 422)."""
        self.require_ready()
        request_id = request.state.request_id
        try:
            self.rate_limiter.take(request.client.host if request.client else "unknown")
            ask = Ask(body.question, body.mode, body.top_k)
            answer = await self.worker.ask(ask, gone=request.is_disconnected)
        except RateLimited:
            self.metrics.rate_limited.inc()
            raise
        except Overloaded:
            self.metrics.rejected.inc()
            raise
        except ClientGone:
            self.metrics.dropped.inc()
            raise
        except QuestionError:
            raise
        except Exception as exc:  # answered here so CORS and metrics middleware still see it
            log.exception("request %s: answering failed", request_id)
            raise ApiError(500, "internal_error", "answering failed; try again later") from exc
        self.metrics.observe_answer(answer.abstained, answer.timings_ms.model_dump())
        return AskResponse.of(answer, request_id)


async def get_service(request: Request) -> Service:
    """The app's :class:`Service`, as a dependency (async, so it costs no threadpool hop)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
