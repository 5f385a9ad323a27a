"""Document writes behind the API: validated off the event loop, then run one at a time in one
background thread; each commits, then the serving index catches up before the call returns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio
from fastapi import Request

from api.errors import ApiError
from api.schemas import Deleted, DocumentChange, Job, WriteResult
from api.uploads import Upload, read_upload
from rag.config import Settings
from rag.docstore import DocumentStore
from rag.documents import Document
from rag.library import Change, DocumentConflict, Library, UnknownDocument
from rag.pipeline import AskPipeline

log = logging.getLogger(__name__)
T = TypeVar("T")


def _change(c: Change, warnings: dict[str, list[str]] | None = None) -> DocumentChange:
    noticed = (warnings or {}).get(c.doc_id, [])
    return DocumentChange(
        doc_id=c.doc_id, title=c.title, status=c.status, chunks=c.chunks, warnings=noticed
    )


def _unknown(doc_id: str) -> ApiError:
    return ApiError(404, "unknown_document", f"no document has the id {doc_id!r}")


class Writes:
    """Adds, replaces and removes documents for the API; ``close()`` waits for the last one."""

    def __init__(self, settings: Settings, pipeline: AskPipeline):
        self.settings, self.pipeline = settings, pipeline
        # One thread: writes never interleave, and a job runs after the writes before it.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verbatim-writes")
        self._library: Library | None = None

    @property
    def store(self) -> DocumentStore:
        assert self.pipeline.store is not None, "writes need a warm pipeline"
        return self.pipeline.store.docstore

    def library(self) -> Library:
        if self._library is None:
            self._library = Library.from_settings(self.settings, self.pipeline.encoder, self.store)
        return self._library

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- running in the writer thread ------------------------------------------------------
    def _commit(self, write: Callable[[], T]) -> T:
        result = write()
        self.pipeline.refresh()  # searchable before the caller hears it is done
        return result

    async def _run(self, write: Callable[[], T]) -> T:
        try:
            return await asyncio.wrap_future(self._pool.submit(self._commit, write))
        except DocumentConflict as exc:
            raise ApiError(409, "document_exists", str(exc)) from None
        except UnknownDocument as exc:
            raise _unknown(exc.args[0]) from None

    def _job(
        self,
        job_id: str,
        documents: list[tuple[Document, str]],
        warnings: dict[str, list[str]] | None = None,
    ) -> None:
        store, done = self.store, [0.0]

        def progress(fraction: float) -> None:
            if fraction - done[0] >= 0.01:  # a transaction per percent, not per batch
                done[0] = fraction
                store.update_job(job_id, progress=round(fraction, 3))

        store.update_job(job_id, state="running")
        try:
            changes = self._commit(lambda: self.library().add(documents, progress=progress))
        except DocumentConflict as exc:
            error = {"code": "document_exists", "message": str(exc)}
        except Exception:
            log.exception("job %s failed", job_id)
            error = {"code": "internal_error", "message": "indexing failed; try again later"}
        else:
            result = [_change(c, warnings).model_dump() for c in changes]
            store.update_job(job_id, state="done", progress=1.0, result=result)
            return
        store.update_job(job_id, state="failed", error=error)

    # -- the endpoints' work ---------------------------------------------------------------
    async def _read(self, request: Request, doc_id: str | None = None) -> Upload:
        body = await request.body()  # already in memory: BodySizeLimit read it
        content_type = request.headers.get("content-type")
        return await anyio.to_thread.run_sync(
            read_upload, body, content_type, self.settings, doc_id
        )

    def _conflicts(self, documents: list[tuple[Document, str]]) -> None:
        """What :meth:`Library.add` would refuse, refused before a job is queued."""
        try:
            self.library().check(documents)
        except DocumentConflict as exc:
            raise ApiError(409, "document_exists", str(exc)) from None

    async def add(self, request: Request) -> tuple[int, WriteResult]:
        """POST /documents: (status, body). 201 when written and searchable, 200 when every
        document was already there, 202 with a job when the files are large."""
        upload = await self._read(request)
        if upload.size > self.settings.upload_sync_bytes:
            await anyio.to_thread.run_sync(self._conflicts, upload.documents)
            job_id = await anyio.to_thread.run_sync(self.store.create_job)
            self._pool.submit(self._job, job_id, upload.documents, upload.warnings)
            return 202, WriteResult(documents=[], job=self.job(job_id))
        library = self.library()
        changes = await self._run(lambda: library.add(upload.documents))
        status = 200 if all(c.status == "unchanged" for c in changes) else 201
        documents = [_change(c, upload.warnings) for c in changes]
        return status, WriteResult(documents=documents, job=None)

    async def replace(self, request: Request, doc_id: str) -> WriteResult:
        """PUT /documents/{doc_id}: the document replaced (or unchanged), searchable."""
        if doc_id not in await anyio.to_thread.run_sync(self.store.origins):
            raise _unknown(doc_id)  # before reading a body that could only be refused
        upload = await self._read(request, doc_id)
        (doc, source), library = upload.documents[0], self.library()
        change = await self._run(lambda: library.replace(doc, source))
        return WriteResult(documents=[_change(change, upload.warnings)], job=None)

    async def remove(self, doc_id: str) -> Deleted:
        """DELETE /documents/{doc_id}: gone from the store and from answers."""
        library = self.library()
        await self._run(lambda: library.remove([doc_id]))
        return Deleted(doc_id=doc_id, deleted=True)

    def job(self, job_id: str) -> Job | None:
        found = self.store.job(job_id)
        return None if found is None else Job.model_validate(found)
