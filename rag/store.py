"""The index directory: documents, chunks, FAISS vectors and BM25, with a manifest.

Builds are atomic: everything is written to a temporary sibling directory that is then renamed
into place, so a crash mid-build leaves the previous index loadable.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from embeddings.vector_index import IndexFileError, VectorIndex
from rag.chunking import Chunk, Chunker
from rag.config import SEED_CORPUS, Settings
from rag.documents import Document, file_hashes, load_corpus
from rag.sparse import SparseIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class IndexLoadError(RuntimeError):
    """The index directory cannot be used as it is; the message says why and what to do."""


class StaleIndexError(IndexLoadError):
    """The index does not match the corpus or the settings."""


@dataclass(frozen=True)
class IndexParams:
    """What an index was built with; a mismatch with the settings makes it stale."""

    embedding_model: str
    chunk_tokens: int
    chunk_overlap_tokens: int
    index_kind: str

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexParams:
        return cls(
            settings.embedding_model,
            settings.chunk_tokens,
            settings.chunk_overlap_tokens,
            settings.index_kind,
        )


@dataclass
class IndexStore:
    """A loaded index: documents by id, chunks in vector order, dense and sparse indexes."""

    manifest: dict
    documents: dict[str, Document]
    chunks: list[Chunk]
    embeddings: np.ndarray
    vectors: VectorIndex
    sparse: SparseIndex

    def chunk_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.documents, 0)
        for c in self.chunks:
            counts[c.doc_id] += 1
        return counts

    # -- persistence -------------------------------------------------------------------------
    def _write(self, folder: Path) -> None:
        with open(folder / "documents.jsonl", "w", encoding="utf-8") as f:
            for d in self.documents.values():
                f.write(json.dumps(asdict(d), ensure_ascii=False) + "\n")
        with open(folder / "chunks.jsonl", "w", encoding="utf-8") as f:
            for c in self.chunks:
                f.write(json.dumps({"doc_id": c.doc_id, "start": c.start, "end": c.end}) + "\n")
        np.save(folder / "embeddings.npy", self.embeddings)
        self.vectors.save(folder / "vectors.faiss")
        self.sparse.save(folder / "bm25")
        # The manifest goes last: a folder without one is never taken for an index.
        (folder / MANIFEST).write_text(json.dumps(self.manifest, indent=2), encoding="utf-8")

    def save(self, index_dir: Path) -> None:
        """Write atomically: a temporary sibling, then rename over ``index_dir``."""
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        with _saving(index_dir, wait=True):
            _remove_leftovers(index_dir)
            tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.tmp-", dir=index_dir.parent))
            try:
                self._write(tmp)
                _fsync_tree(tmp)
                old = index_dir.with_name(f".{index_dir.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                if index_dir.exists():
                    os.replace(index_dir, old)
                os.replace(tmp, index_dir)
                shutil.rmtree(old, ignore_errors=True)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    @classmethod
    def load(cls, index_dir: Path) -> IndexStore:
        """Read an index directory; a clear error when it is missing, partial or damaged."""
        remove_stale_builds(index_dir)
        manifest_path = index_dir / MANIFEST
        if not manifest_path.is_file():
            raise IndexLoadError(f"no index at {index_dir}: run `verbatim ingest` to build one")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest.get("format_version") != FORMAT_VERSION:
                raise StaleIndexError(
                    f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}"
                )
            docs = {}
            with open(index_dir / "documents.jsonl", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    row["excluded"] = tuple(tuple(s) for s in row["excluded"])
                    docs[row["doc_id"]] = Document(**row)
            chunks = []
            with open(index_dir / "chunks.jsonl", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    text = docs[row["doc_id"]].text[row["start"] : row["end"]]
                    chunks.append(Chunk(row["doc_id"], row["start"], row["end"], text))
            embeddings = np.load(index_dir / "embeddings.npy")
            vectors = VectorIndex.load(index_dir / "vectors.faiss")
            sparse = SparseIndex.load(index_dir / "bm25", len(chunks))
        except IndexFileError as exc:
            raise IndexLoadError(f"{exc}; rebuild it with `verbatim ingest --rebuild`") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexLoadError(
                f"index at {index_dir} is damaged ({type(exc).__name__}: {exc}); "
                "rebuild it with `verbatim ingest --rebuild`"
            ) from exc
        if not (vectors.size == len(chunks) == len(embeddings)):
            raise IndexLoadError(
                f"index at {index_dir} is inconsistent ({vectors.size} vectors, "
                f"{len(chunks)} chunks); rebuild it with `verbatim ingest --rebuild`"
            )
        return cls(manifest, docs, chunks, embeddings, vectors, sparse)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


@contextmanager
def _saving(index_dir: Path, wait: bool) -> Iterator[bool]:
    """Hold the lock that every save takes (yields ``False`` when busy and ``wait`` is off).

    It is a lock on the parent folder itself, so it needs no file of its own (and works in a
    read-only one); the kernel drops it when its holder dies, even by SIGKILL."""
    fd = os.open(index_dir.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _remove_leftovers(index_dir: Path) -> None:
    """Delete what killed saves left: temporary folders, and a previous index already replaced.

    Call it only under :func:`_saving`: then no save is writing any of them."""
    for tmp in index_dir.parent.glob(f".{index_dir.name}.tmp-*"):
        log.info("removing %s, left by an interrupted build", tmp.name)
        shutil.rmtree(tmp, ignore_errors=True)
    old = index_dir.with_name(f".{index_dir.name}.old")
    if (index_dir / MANIFEST).is_file() and old.exists():
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_builds(index_dir: Path) -> None:
    """Put back an index whose swap was cut short, and delete interrupted builds' folders,
    unless a save is under way right now."""
    if not index_dir.parent.is_dir():
        return
    with _saving(index_dir, wait=False) as free:
        if free:  # else a save may be between its two renames: leave its folders alone
            _recover_interrupted_swap(index_dir)
            _remove_leftovers(index_dir)


def _recover_interrupted_swap(index_dir: Path) -> None:
    """If a crash fell between the two renames of ``save``, put the previous index back."""
    old = index_dir.with_name(f".{index_dir.name}.old")
    if not index_dir.exists() and (old / MANIFEST).is_file():
        os.replace(old, index_dir)


def stale_reasons(store: IndexStore, params: IndexParams, corpus_dir: Path) -> list[str]:
    """Why the index no longer matches the settings or the corpus; empty when it is fresh."""
    reasons = []
    built = store.manifest.get("params", {})
    for key, value in asdict(params).items():
        if built.get(key) != value:
            reasons.append(f"{key} changed ({built.get(key)!r} -> {value!r})")
    current = file_hashes(corpus_dir)
    indexed = {k: v["content_hash"] for k, v in store.manifest.get("documents", {}).items()}
    added = sorted(set(current) - set(indexed))
    removed = sorted(set(indexed) - set(current))
    changed = sorted(k for k in set(current) & set(indexed) if current[k] != indexed[k])
    if Path(store.manifest.get("corpus_dir", "")) != corpus_dir.resolve():
        reasons.append(
            f"corpus folder changed ({store.manifest.get('corpus_dir')} -> {corpus_dir})"
        )
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            reasons.append(f"{len(names)} document(s) {label}: {', '.join(names[:5])}")
    return reasons


def build_index(
    settings: Settings, encoder: Encoder, previous: IndexStore | None = None
) -> IndexStore:
    """Read the corpus, chunk, embed (reusing ``previous`` vectors of unchanged documents),
    index, and save atomically to ``settings.index_dir``."""
    started = time.perf_counter()
    params = IndexParams.from_settings(settings)
    corpus_dir = settings.corpus_dir or SEED_CORPUS
    docs = load_corpus(corpus_dir)
    chunker = Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
    chunks = [c for d in docs for c in chunker.chunk(d)]
    reusable: dict[tuple[str, int, int], np.ndarray] = {}
    if previous is not None and previous.manifest.get("params") == asdict(params):
        unchanged = {
            d.doc_id
            for d in docs
            if d.doc_id in previous.documents
            and previous.documents[d.doc_id].content_hash == d.content_hash
        }
        for c, v in zip(previous.chunks, previous.embeddings, strict=True):
            if c.doc_id in unchanged:
                reusable[(c.doc_id, c.start, c.end)] = v
    todo = [i for i, c in enumerate(chunks) if (c.doc_id, c.start, c.end) not in reusable]
    log.info(
        "embedding %d of %d chunks (%d reused)", len(todo), len(chunks), len(chunks) - len(todo)
    )
    fresh = encoder.encode([chunks[i].text for i in todo])
    embeddings = np.zeros((len(chunks), encoder.dimension), dtype=np.float32)
    for i, c in enumerate(chunks):
        if (c.doc_id, c.start, c.end) in reusable:
            embeddings[i] = reusable[(c.doc_id, c.start, c.end)]
    if todo:
        embeddings[todo] = fresh
    manifest = {
        "format_version": FORMAT_VERSION,
        "params": asdict(params),
        "embedding_dimension": encoder.dimension,
        "corpus_dir": str(corpus_dir.resolve()),
        "documents": {
            d.doc_id: {"content_hash": d.content_hash, "title": d.title, "length": len(d.text)}
            for d in docs
        },
        "n_chunks": len(chunks),
        "embedded_chunks": len(todo),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    store = IndexStore(
        manifest=manifest,
        documents={d.doc_id: d for d in docs},
        chunks=chunks,
        embeddings=embeddings,
        vectors=VectorIndex.build(embeddings, settings.index_kind),
        sparse=SparseIndex.build([c.text for c in chunks]),
    )
    store.save(settings.index_dir)
    return store


def corpus_of(settings: Settings, store: IndexStore | None = None) -> Path:
    """The corpus folder: the configured one, else the one the index at ``settings.index_dir``
    (or ``store``) was built from, else the seeds."""
    if settings.corpus_dir is not None:
        return Path(settings.corpus_dir)
    manifest = store.manifest if store is not None else _read_manifest(settings.index_dir)
    folder = manifest.get("corpus_dir") if isinstance(manifest, dict) else None
    if isinstance(folder, str) and Path(folder).is_dir():
        return Path(folder)
    return SEED_CORPUS


def _read_manifest(index_dir: Path) -> dict:
    """The manifest of an index folder ({} when there is none or it cannot be read)."""
    try:
        return json.loads((Path(index_dir) / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def prepare_index(settings: Settings, rebuild: bool = False) -> IndexStore:
    """Load, build or rebuild the index the settings name, with a warm encoder of their own:
    what ``verbatim ingest`` and a multi-worker ``serve`` do before anything asks."""
    encoder = Encoder.from_settings(settings)
    encoder.warm_up()
    return open_index(settings, encoder, rebuild=rebuild)


def open_index(settings: Settings, encoder: Encoder, rebuild: bool = False) -> IndexStore:
    """The index for these settings: loaded if fresh, else built or rebuilt (saying why), or
    refused with :class:`StaleIndexError` when ``settings.on_stale_index == "refuse"``.

    With no corpus folder configured, the index keeps following the folder it was built from.
    A damaged index is an error unless ``rebuild`` is asked for."""
    remove_stale_builds(settings.index_dir)
    store: IndexStore | None = None
    reasons: list[str] = []
    if (settings.index_dir / MANIFEST).exists():
        try:
            store = IndexStore.load(settings.index_dir)
        except StaleIndexError as exc:  # an older index format
            reasons.append(str(exc))
        except IndexLoadError:
            if not rebuild:
                raise
    settings = settings.model_copy(update={"corpus_dir": corpus_of(settings, store)})
    if rebuild:
        return build_index(settings, encoder)
    if store is None and not reasons:
        log.info("no index at %s; building it", settings.index_dir)
        return build_index(settings, encoder)
    if store is not None:
        reasons = stale_reasons(store, IndexParams.from_settings(settings), settings.corpus_dir)
        if not reasons:
            return store
    message = f"index at {settings.index_dir} is stale: " + "; ".join(reasons)
    if settings.on_stale_index == "refuse":
        raise StaleIndexError(message + " (run `verbatim ingest` to rebuild it)")
    log.warning("%s; rebuilding", message)
    return build_index(settings, encoder, previous=store)
