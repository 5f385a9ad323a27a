"""The index that answers questions: documents, chunks, FAISS vectors and BM25 in memory, loaded
from the :class:`DocumentStore` and brought up to date with it one changed document at a time."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from embeddings.index_params import IndexParams as VectorParams
from embeddings.vector_index import IndexKind
from rag.chunk_table import ChunkTable
from rag.config import SEED_CORPUS, Settings
from rag.docstore import DocumentStore, StoreError
from rag.documents import CorpusError, Document, file_hashes
from rag.kept_indexes import (
    DenseIndex,
    built_vectors,
    catch_up,
    kept_sparse,
    kept_vectors,
    save_vectors,
)
from rag.library import Library
from rag.sparse import BM25_FILE, SparseIndex

log = logging.getLogger(__name__)

# What the JSON-lines index of earlier versions left in the index folder.
_FORMAT_1 = ("manifest.json", "documents.jsonl", "chunks.jsonl", "embeddings.npy", "vectors.faiss")


class IndexLoadError(RuntimeError):
    """The index cannot be used as it is; the message says why and what to do."""


class StaleIndexError(IndexLoadError):
    """The index does not match the corpus or the settings."""


@dataclass(frozen=True)
class IndexParams:
    """What chunks and vectors were made with; a change means chunking and embedding again."""

    embedding_model: str
    chunk_tokens: int
    chunk_overlap_tokens: int
    embedding_precision: str = "fp32"
    chunk_context: str = "none"

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexParams:
        s = settings
        return cls(
            s.embedding_model,
            s.chunk_tokens,
            s.chunk_overlap_tokens,
            s.embedding_precision,
            s.chunk_context,
        )


class IndexStore:
    """Documents by id, chunks by id, and the dense and sparse indexes over those ids, as of
    one generation of the document store. :meth:`refresh` applies later changes; call it
    where nothing is searching (the pipeline holds its lock). The ``documents`` and ``chunks``
    mappings are replaced, never changed, so other threads may read them at any time."""

    def __init__(
        self,
        docstore: DocumentStore,
        kind: IndexKind,
        documents: dict[str, Document],
        chunks: ChunkTable,
        vectors: DenseIndex,
        sparse: SparseIndex,
        generation: int,
    ):
        self.docstore, self.kind = docstore, kind
        self.documents, self.chunks = documents, chunks
        self.vectors, self.sparse = vectors, sparse
        self.generation = generation
        self.lock = threading.RLock()  # held while searching and while refreshing

    @classmethod
    def load(
        cls,
        docstore: DocumentStore,
        kind: IndexKind = "flat",
        params: IndexParams | None = None,
        cache: bool = True,
        dense: DenseIndex | None = None,
    ) -> IndexStore:
        """Everything the store holds, as of one consistent generation. An approximate index is
        kept beside the store (``vectors-<kind>.faiss``) and brought up to date with it, so a
        start does not rebuild the graph; exact search builds in a moment and is not kept.
        ``dense``: another dense index (Milvus) to bring in step and search instead."""
        params = params or VectorParams()
        with docstore.snapshot():
            generation = docstore.generation()
            documents = {d.doc_id: d for d in docstore.documents()}
            chunks = ChunkTable.from_rows(documents, docstore.chunk_rows())
            ids = chunks.ids()
            kept = docstore.path.with_name(BM25_FILE) if cache else None
            sparse = kept_sparse(docstore, ids, kept)
            path = docstore.path.with_name(f"vectors-{kind}.faiss") if cache else None
            if dense is not None:
                catch_up(dense, docstore, ids)
                vectors = dense
            else:
                vectors = kept_vectors(docstore, path, kind, params, ids)
            if vectors is None:
                vectors = built_vectors(docstore, kind, params, ids)
                if path is not None and kind != "flat":
                    save_vectors(vectors, path)
        return cls(docstore, kind, documents, chunks, vectors, sparse, generation)

    def close(self) -> None:
        """Let go of what the index holds outside this process (a Milvus Lite folder)."""
        closing = getattr(self.vectors, "close", None)
        if closing is not None:
            closing()

    def chunk_counts(self) -> dict[str, int]:
        counts = self.chunks.counts()
        return {doc_id: counts.get(doc_id, 0) for doc_id in self.documents}

    def refresh(self) -> bool:
        """Catch up with the document store; whether anything changed. Re-applying a change
        is harmless, so a commit that lands while this reads is simply read again next time."""
        if self.docstore.generation() == self.generation:
            return False
        started = time.perf_counter()
        with self.docstore.snapshot():
            generation = self.docstore.generation()
            changed = sorted(self.docstore.changed_since(self.generation))
            fresh_docs = list(self.docstore.documents(changed))
            stored = list(self.docstore.chunks(changed))
        documents = dict(self.documents)
        gone = self.chunks.ids_of(changed).tolist()
        for chunk_id in gone:
            self.sparse.remove(chunk_id)
        self.vectors.remove(gone)
        for doc_id in changed:
            documents.pop(doc_id, None)
        documents.update((d.doc_id, d) for d in fresh_docs)
        chunks = self.chunks.changed(
            changed, [(s.id, s.doc_id, s.start, s.end) for s in stored], documents
        )
        for s in stored:
            self.sparse.add(s.id, s.terms)
        if stored:
            self.vectors.add(np.stack([s.vector for s in stored]), np.array([s.id for s in stored]))
        self.documents, self.chunks, self.generation = documents, chunks, generation
        log.info(
            "index at generation %d: %d document(s) changed, -%d +%d chunks in %.0f ms",
            generation, len(changed), len(gone), len(stored), 1000 * (time.perf_counter() - started),
        )  # fmt: skip
        return True


def index_kind_for(settings: Settings, chunks: int) -> IndexKind:
    """The FAISS index the settings ask for; ``auto``: exact search up to
    ``auto_index_min_chunks``, HNSW past it."""
    if settings.index_kind != "auto":
        return settings.index_kind
    return "hnsw" if chunks >= settings.auto_index_min_chunks else "flat"


def vector_params(settings: Settings) -> VectorParams:
    return VectorParams(ef_search=settings.hnsw_ef_search, nprobe=settings.ivf_nprobe)


def corpus_of(settings: Settings, docstore: DocumentStore | None = None) -> Path:
    """The corpus folder: the configured one, else the one the store was last kept in step
    with, else the seeds."""
    if settings.corpus_dir is not None:
        return Path(settings.corpus_dir)
    docstore = docstore or DocumentStore.in_folder(settings.index_dir)
    folder = docstore.meta("corpus_dir") if docstore.path.is_file() else None
    if isinstance(folder, str) and Path(folder).is_dir():
        return Path(folder)
    return SEED_CORPUS


def _remove_format_1(index_dir: Path) -> None:
    if (index_dir / "manifest.json").is_file():
        log.warning("replacing the index of an earlier version at %s", index_dir)
        for name in _FORMAT_1:
            (index_dir / name).unlink(missing_ok=True)
        shutil.rmtree(index_dir / "bm25", ignore_errors=True)


def prepare_index(settings: Settings, rebuild: bool = False) -> IndexStore:
    """Load, build or update the index the settings name, with a warm encoder of its own:
    what ``verbatim ingest`` and a multi-worker ``serve`` do before anything asks."""
    encoder = Encoder.from_settings(settings)
    encoder.warm_up()
    return open_index(settings, encoder, rebuild=rebuild)


def update_store(settings: Settings, encoder: Encoder, rebuild: bool = False) -> DocumentStore:
    """Bring the document store in step with the settings: chunk and embed again if the
    chunking or embedding changed, and sync the corpus folder (its new and changed files in,
    its deleted ones out; uploaded documents stay). Refused with :class:`StaleIndexError`
    when something would change and ``on_stale_index == "refuse"``."""
    _remove_format_1(settings.index_dir)
    docstore = DocumentStore.in_folder(settings.index_dir)
    if not docstore.path.exists() and not file_hashes(corpus_of(settings, docstore)):
        raise CorpusError(f"no readable documents in {corpus_of(settings, docstore)}")
    try:
        docstore.generation()
    except StoreError as exc:
        if not rebuild:
            raise IndexLoadError(str(exc)) from exc
        aside = docstore.path.with_name(f"{docstore.path.name}.damaged-{int(time.time())}")
        log.warning("%s; moving it to %s and starting afresh", exc, aside.name)
        docstore.close()
        os.replace(docstore.path, aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{docstore.path}{suffix}").unlink(missing_ok=True)
        docstore = DocumentStore.in_folder(settings.index_dir)
    if interrupted := docstore.fail_unfinished_jobs():
        log.warning(
            "%d upload job(s) were cut short by a stop; they are marked failed", interrupted
        )
    library = Library.from_settings(settings, encoder)
    refuse = settings.on_stale_index == "refuse" and not rebuild
    if rebuild:
        docstore.clear()
    params = asdict(IndexParams.from_settings(settings))
    records = docstore.records()
    built = docstore.meta("params")
    if isinstance(built, dict):  # older stores: fp32 vectors of the chunk text alone
        built = {"embedding_precision": "fp32", "chunk_context": "none", **built}
    if records and built not in (None, params):
        message = f"the index was built with {docstore.meta('params')}, not {params}"
        if refuse:
            raise StaleIndexError(f"{message} (run `verbatim ingest` to rebuild it)")
        log.warning("%s: chunking and embedding %d documents again", message, len(records))
        docstore.set_meta(params=params)
        library.rechunk_all()
    docstore.set_meta(params=params, embedding_dimension=encoder.dimension)
    folder = corpus_of(settings, docstore)
    if not file_hashes(folder) and not any(r.origin == "upload" for r in records):
        raise CorpusError(f"no readable documents in {folder}")
    plan = library.plan_sync(folder)
    if plan and refuse and records:
        raise StaleIndexError(
            f"index at {settings.index_dir} is stale: {len(plan.add)} file(s) of {folder} new "
            f"or changed, {len(plan.remove)} gone (run `verbatim ingest` to update it)"
        )
    if plan:
        log.info(
            "corpus %s: indexing %d file(s), removing %d", folder, len(plan.add), len(plan.remove)
        )
        library.sync(folder, plan)
    docstore.set_meta(corpus_dir=str(folder.resolve()))
    return docstore


def open_index(settings: Settings, encoder: Encoder, rebuild: bool = False) -> IndexStore:
    """The index for these settings, its store first brought in step (:func:`update_store`)."""
    docstore = update_store(settings, encoder, rebuild)
    kind = index_kind_for(settings, docstore.count_chunks())
    dense = (
        milvus_index(settings, kind, encoder.dimension)
        if settings.vector_store == "milvus"
        else None
    )
    return IndexStore.load(docstore, kind, vector_params(settings), dense=dense)


def milvus_index(settings: Settings, kind: IndexKind, dimension: int) -> DenseIndex:
    """The Milvus collection the settings name, connected (``pip install 'verbatim[milvus]'``)."""
    try:
        from embeddings.milvus_index import MilvusIndex
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise IndexLoadError(
            "VERBATIM_VECTOR_STORE=milvus needs the milvus extra: pip install -e '.[milvus]'"
        ) from exc
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    index = "flat" if kind == "flat" else "hnsw"  # Milvus serves IVF-like needs with HNSW here
    return MilvusIndex(
        milvus_uri(settings), dimension=dimension, index=index,
        ef_search=settings.hnsw_ef_search, token=token,
    ).warm_up()  # fmt: skip


def milvus_lite(settings: Settings) -> bool:
    """Whether the settings put the vectors in Milvus Lite (in this process: one at a time)."""
    uri = settings.milvus_uri
    return settings.vector_store == "milvus" and (not uri or "://" not in uri)


def milvus_uri(settings: Settings) -> str:
    """A server's URI, or the Milvus Lite folder beside the store."""
    return settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
