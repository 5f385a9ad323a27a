"""The indexes kept beside the document store (the HNSW or IVF graph, the BM25 postings) and
how they are brought in step with it by chunk id, or built anew from its vectors and terms."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.index_params import IndexParams as VectorParams
from embeddings.vector_index import IndexFileError, IndexKind, VectorIndex
from rag.docstore import DocumentStore
from rag.sparse import BM25_FILE_1, SparseIndex, convert_earlier

log = logging.getLogger(__name__)

BATCH = 10_000  # vectors read from the store at a time (a million are 1.5 GB)


class DenseIndex(Protocol):
    """What the store needs of a dense index: FAISS's :class:`VectorIndex` or Milvus's."""

    size: int

    def ids(self) -> np.ndarray: ...
    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None: ...
    def remove(self, ids: list[int]) -> None: ...
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def built_vectors(
    docstore: DocumentStore, kind: IndexKind, params: VectorParams, ids: np.ndarray
) -> VectorIndex:
    """A new index over the stored vectors of ``ids``: IVF trains on all of them at once; flat
    and HNSW take them :data:`BATCH` at a time, so they are never all held twice."""
    if kind == "ivf":
        found, matrix = docstore.vectors()
        return VectorIndex.build(matrix, kind, found, params)
    found, matrix = docstore.vectors(ids[:BATCH])
    vectors = VectorIndex.build(matrix, kind, found, params)
    catch_up(vectors, docstore, ids)
    return vectors


def kept_vectors(
    docstore: DocumentStore,
    path: Path | None,
    kind: IndexKind,
    params: VectorParams,
    ids: np.ndarray,
) -> VectorIndex | None:
    """The kept index, its ids brought in line with ``ids`` (``None``: none usable)."""
    if path is None or kind == "flat" or not path.is_file():
        return None
    sidecar = path.with_suffix(".json")
    try:
        built = json.loads(sidecar.read_text("utf-8"))
        vectors = VectorIndex.load(path, kind, params)
    except (OSError, ValueError, IndexFileError) as exc:
        log.warning("rebuilding the %s index: the kept one is unusable (%s)", kind, exc)
        return None
    if built != _build_params(kind, params):
        return None
    if catch_up(vectors, docstore, ids):
        save_vectors(vectors, path)
    log.info("%s index: kept one loaded", kind)
    return vectors


def _difference(kept: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids kept that the store no longer has, the store's ids not kept); each array holds an id
    once, so no ``np.unique`` pass is needed (over a million ids it costs seconds a call)."""
    return np.setdiff1d(kept, ids, assume_unique=True), np.setdiff1d(ids, kept, assume_unique=True)


def catch_up(dense: DenseIndex, docstore: DocumentStore, ids: np.ndarray) -> int:
    """Make ``dense`` hold exactly ``ids``: what the store no longer has deleted, what it lacks
    added (chunk ids are never reused, so an id kept is a vector still right); how many moved."""
    stale, missing = _difference(dense.ids(), ids)
    dense.remove(stale.tolist())
    for i in range(0, len(missing), BATCH):
        found, matrix = docstore.vectors(missing[i : i + BATCH])
        dense.add(matrix, found)
    log.info("dense index in step with the store: -%d +%d vectors", len(stale), len(missing))
    return len(stale) + len(missing)


def kept_sparse(docstore: DocumentStore, ids: np.ndarray, path: Path | None) -> SparseIndex:
    """BM25 over ``ids``: the postings kept beside the store, caught up by id, or built from
    the stored terms (and kept) when there are none or a tenth of them changed."""
    if path is not None and path.with_name(BM25_FILE_1).is_file():
        convert_earlier(path.with_name(BM25_FILE_1), path)
    if path is not None and path.is_file():
        try:
            sparse = SparseIndex.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("rebuilding BM25: the kept postings are unusable (%s)", exc)
        else:
            stale, missing = _difference(sparse.ids(), ids)
            if (len(stale) + len(missing)) * 10 <= max(len(ids), 1):
                for chunk_id in stale.tolist():
                    sparse.remove(chunk_id)
                for chunk_id, terms in docstore.terms(missing):
                    sparse.add(chunk_id, terms)
                log.info("BM25: kept postings loaded, -%d +%d chunks", len(stale), len(missing))
                return sparse
    sparse = SparseIndex.build(docstore.terms())
    if path is not None:
        sparse.save(path)
    return sparse


def _build_params(kind: IndexKind, params: VectorParams) -> dict:
    """What a kept index must have been built with (search-time knobs may differ)."""
    built = params.as_dict()
    return {"kind": kind, **{k: built[k] for k in ("hnsw_m", "ef_construction", "nlist")}}


def save_vectors(vectors: VectorIndex, path: Path) -> None:
    vectors.save(path)
    path.with_suffix(".json").write_text(json.dumps(_build_params(vectors.kind, vectors.params)))
