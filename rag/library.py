"""The write side of the corpus: add, replace and remove documents (chunked, embedded and
committed to the :class:`DocumentStore` in one transaction each), and keep a folder in step."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from embeddings.encoder import Encoder
from rag.chunking import Chunker, searched_text
from rag.config import ChunkContext, Settings
from rag.docstore import DocumentStore, NewChunk, Origin, Put
from rag.documents import Document, corpus_files, file_hashes, read_document
from rag.sparse import terms_of

log = logging.getLogger(__name__)

Status = Literal["added", "replaced", "unchanged", "removed"]
Progress = Callable[[float], None]

# A document id: path segments of printable characters, none of them "." or "..".
_SEGMENT = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,255}$")


class DocumentConflict(ValueError):
    """Another document already has this id (replace it instead)."""


class UnknownDocument(KeyError):
    """No document has this id."""


def check_doc_id(doc_id: str) -> str:
    """``doc_id`` if it is a usable id: relative, no empty, "." or ".." segment, printable."""
    segments = doc_id.split("/")
    if (
        not doc_id
        or len(doc_id) > 1024
        or any(s in ("", ".", "..") or not _SEGMENT.match(s) or s != s.strip() for s in segments)
    ):
        raise ValueError(
            f"{doc_id[:100]!r} is not a usable document id: use letters, digits and punctuation, "
            "optionally in '/'-separated segments, without '.' or '..' segments"
        )
    return doc_id


@dataclass(frozen=True)
class Change:
    """What happened to one document."""

    doc_id: str
    title: str
    status: Status
    chunks: int


@dataclass(frozen=True)
class SyncPlan:
    """What keeping the store in step with a folder would change."""

    add: list[Path]
    remove: list[str]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


class Library:
    """Adds, replaces and removes documents. Cheap to construct; the encoder is warmed on use."""

    def __init__(
        self,
        store: DocumentStore,
        encoder: Encoder,
        chunk_tokens: int = 100,
        chunk_overlap_tokens: int = 30,
        batch_size: int = 64,
        chunk_context: ChunkContext = "none",
    ):
        self.store = store
        self.encoder = encoder
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap_tokens = chunk_overlap_tokens
        self.chunk_context = chunk_context  # what besides its text a chunk is searched by
        self.batch_size = batch_size  # chunks embedded per step (how often progress moves)

    @classmethod
    def from_settings(
        cls, settings: Settings, encoder: Encoder, store: DocumentStore | None = None
    ) -> Library:
        """The library of ``store`` (default: the one in ``settings.index_dir``)."""
        return cls(
            store or DocumentStore.in_folder(settings.index_dir),
            encoder,
            settings.chunk_tokens,
            settings.chunk_overlap_tokens,
            chunk_context=settings.chunk_context,
        )

    def _puts(
        self, items: Sequence[tuple[Document, Origin, str]], progress: Progress | None = None
    ) -> list[Put]:
        """Chunk, embed and tokenise documents for :meth:`DocumentStore.write`; the chunks of
        all of them are embedded together, ``batch_size`` at a time."""
        chunker = Chunker(self.encoder.count_tokens, self.chunk_tokens, self.chunk_overlap_tokens)
        chunked = [chunker.chunk(doc) for doc, _, _ in items]
        texts = [
            searched_text(c, doc.title, self.chunk_context)
            for (doc, _, _), chunks in zip(items, chunked, strict=True)
            for c in chunks
        ]
        vectors: list = []
        for i in range(0, len(texts), self.batch_size):
            vectors.extend(self.encoder.encode(texts[i : i + self.batch_size]))
            if progress is not None:
                progress(min(len(texts), i + self.batch_size) / len(texts))
        terms = terms_of(texts)
        puts, n = [], 0
        for (doc, origin, source), chunks in zip(items, chunked, strict=True):
            made = [
                NewChunk(c.start, c.end, terms[n + j], vectors[n + j]) for j, c in enumerate(chunks)
            ]
            puts.append(Put(doc, origin, source, made))
            n += len(chunks)
        return puts

    def add(
        self,
        documents: Sequence[tuple[Document, str]],
        origin: Origin = "upload",
        replace: bool = False,
        progress: Progress | None = None,
    ) -> list[Change]:
        """Add ``(document, source name)`` pairs. A document whose bytes are already stored
        (same sha256) is left as it is; an id in use is :class:`DocumentConflict` unless
        ``replace``. All or nothing: one transaction for the lot."""
        existing = self.check(documents, replace)
        by_sha = self.store.sha256s()
        changes: list[Change] = []
        todo: list[tuple[Document, Origin, str]] = []
        for doc, source in documents:
            same = existing.get(doc.doc_id)
            if same is not None and same[1] == doc.content_hash:
                changes.append(Change(doc.doc_id, doc.title, "unchanged", -1))
                continue
            if same is None and doc.content_hash in by_sha and origin == "upload":
                changes.append(Change(by_sha[doc.content_hash], doc.title, "unchanged", -1))
                continue

            todo.append((doc, origin, source))
            by_sha[doc.content_hash] = doc.doc_id
            status: Status = "replaced" if same is not None else "added"
            changes.append(Change(doc.doc_id, doc.title, status, -1))
        puts = self._puts(todo, progress)
        if puts:
            self.store.write(puts)
        counts = {r.doc_id: r.chunks for r in self.store.records([c.doc_id for c in changes])}
        return [
            Change(c.doc_id, c.title, c.status, counts.get(c.doc_id, 0)) if c.chunks < 0 else c
            for c in changes
        ]

    def check(
        self, documents: Sequence[tuple[Document, str]], replace: bool = False
    ) -> dict[str, tuple[Origin, str]]:
        """Refuse, before any work, what :meth:`add` would: an unusable id, two documents with
        one id, an id in use with other bytes (unless ``replace``); the stored origins."""
        ids = [doc.doc_id for doc, _ in documents]
        if len(set(ids)) < len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise DocumentConflict(f"two documents have the id {twice!r}: give each its own")
        for doc_id in ids:
            check_doc_id(doc_id)
        existing = self.store.origins()
        for doc, _ in documents:
            same = existing.get(doc.doc_id)
            if same is not None and same[1] != doc.content_hash and not replace:
                raise DocumentConflict(
                    f"a document with the id {doc.doc_id!r} exists: replace it with "
                    f"PUT /documents/{doc.doc_id} (or `verbatim add --replace`)"
                )
        return existing

    def replace(self, doc: Document, source: str, progress: Progress | None = None) -> Change:
        """Replace an existing document (:class:`UnknownDocument` when there is none)."""
        if doc.doc_id not in self.store.origins():
            raise UnknownDocument(doc.doc_id)
        return self.add([(doc, source)], "upload", replace=True, progress=progress)[0]

    def remove(self, doc_ids: Sequence[str]) -> list[Change]:
        """Delete documents, all or none (:class:`UnknownDocument` names the first missing)."""
        existing = {r.doc_id: r for r in self.store.records()}
        for doc_id in doc_ids:
            if doc_id not in existing:
                raise UnknownDocument(doc_id)
        self.store.write(deletes=list(doc_ids))
        return [Change(i, existing[i].title, "removed", 0) for i in doc_ids]

    # -- folders ---------------------------------------------------------------------------
    def plan_sync(self, folder: Path) -> SyncPlan:
        """The files to (re)index and the folder documents to drop so the store matches."""
        hashes = file_hashes(folder)
        stored = self.store.origins()
        add = [
            p
            for p in corpus_files(folder)
            if (doc_id := p.relative_to(folder).as_posix()) in hashes
            and stored.get(doc_id, ("", ""))[1] != hashes[doc_id]
        ]
        remove = sorted(d for d, (o, _) in stored.items() if o == "folder" and d not in hashes)
        return SyncPlan(add, remove)

    def sync(
        self, folder: Path, plan: SyncPlan | None = None, batch_documents: int = 200
    ) -> list[Change]:
        """Keep the store in step with ``folder``: its new and changed files in, the folder
        documents it no longer has out; uploads are left alone. One transaction per
        ``batch_documents`` files, so memory stays bounded and an interrupted sync resumes."""
        plan = plan or self.plan_sync(folder)
        existing = self.store.origins()
        changes = [Change(d, "", "removed", 0) for d in plan.remove]
        if plan.remove:
            self.store.write(deletes=plan.remove)
        for i in range(0, len(plan.add), batch_documents):
            batch = plan.add[i : i + batch_documents]
            docs = [d for p in batch if (d := read_document(p, folder)) is not None]
            puts = self._puts([(d, "folder", d.doc_id) for d in docs])
            if puts:
                self.store.write(puts)
            changes += [
                Change(
                    p.document.doc_id,
                    p.document.title,
                    "replaced" if p.document.doc_id in existing else "added",
                    len(p.chunks),
                )
                for p in puts
            ]
        return changes

    def rechunk_all(self) -> int:
        """Chunk and embed every stored document again (the chunking or embedding settings
        changed); one transaction. The number of documents."""
        records = {r.doc_id: r for r in self.store.records()}
        puts = self._puts(
            [
                (d, records[d.doc_id].origin, records[d.doc_id].source)
                for d in self.store.documents()
            ]
        )
        self.store.write(puts)
        return len(puts)
