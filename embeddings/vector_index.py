"""A FAISS inner-product index over normalised vectors, keyed by caller ids (chunk ids), that
takes additions and removals without a rebuild; saved and loaded as one file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from embeddings.index_params import IndexParams

IndexKind = Literal["flat", "hnsw", "ivf"]
# Searches of fewer query rows run on one OpenMP thread: waking FAISS's team costs more than
# such a search (a few ms a call on a loaded machine, against microseconds for the search).
ONE_THREAD_BELOW = 64


class IndexFileError(RuntimeError):
    """The index file is missing, truncated or not a FAISS index."""


def _inner(kind: IndexKind, dim: int, training: np.ndarray, p: IndexParams) -> faiss.Index:
    if kind == "flat" or (kind == "ivf" and not len(training)):  # IVF needs data to train on
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = p.ef_construction
        index.hnsw.efSearch = p.ef_search
        return index
    if kind == "ivf":
        nlist = p.nlist or max(1, min(65536, int(np.sqrt(len(training)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        quantizer.this.disown()  # the IVF index owns and frees its quantizer
        index.own_fields = True
        index.train(training[:: max(1, len(training) // (64 * nlist))])  # 64 points a list
        index.nprobe = min(nlist, p.nprobe)
        return index
    raise ValueError(f"unknown index kind {kind!r}; use flat, hnsw or ivf")


class VectorIndex:
    """Exact (``flat``) or approximate (``hnsw``, ``ivf``) cosine search over unit vectors,
    each stored under an integer id (``IndexIDMap2``; IVF keeps ids in its lists). HNSW cannot
    delete in place: removed ids are filtered out of searches, and the graph is rebuilt once
    they are a quarter of it."""

    def __init__(
        self, index: faiss.Index, kind: IndexKind = "flat", params: IndexParams | None = None
    ):
        self._index = index
        self.kind = kind
        self.params = params or IndexParams()
        self._removed: set[int] = set()
        self._selector: tuple | None = None  # the filter of removed ids, and what it references

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: IndexKind = "flat",
        ids: np.ndarray | None = None,
        params: IndexParams | None = None,
    ) -> VectorIndex:
        """Index the rows of ``vectors`` under ``ids`` (default: row numbers)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-d array")
        params = params or IndexParams()
        inner = _inner(kind, vectors.shape[1], vectors, params)
        ivf = isinstance(inner, faiss.IndexIVF)  # it stores ids itself and deletes by id
        index = cls(inner if ivf else faiss.IndexIDMap2(inner), kind, params)
        index.add(vectors, np.arange(len(vectors)) if ids is None else ids)
        return index

    @property
    def size(self) -> int:
        return int(self._index.ntotal) - len(self._removed)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def ids(self) -> np.ndarray:
        """Every id searched, in storage order."""
        if isinstance(self._index, faiss.IndexIVF):
            lists = self._index.invlists
            return np.concatenate(
                [np.zeros(0, dtype=np.int64)]
                + [
                    faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                    for i in range(self._index.nlist)
                ]
            )
        stored = faiss.vector_to_array(self._index.id_map)
        if not self._removed:
            return stored
        return stored[~np.isin(stored, np.fromiter(self._removed, dtype=np.int64))]

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if len(vectors):
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        """Drop these ids (flat and IVF at once; HNSW filters them, then compacts)."""
        if not ids:
            return
        if self.kind != "hnsw":
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
            return
        self._removed |= set(ids)
        self._selector = None
        if len(self._removed) * 4 > self._index.ntotal:
            self._compact()

    def _compact(self) -> None:
        """Rebuild the HNSW graph from the vectors that stay."""
        keep = self.ids()
        vectors = (
            np.stack([self._index.reconstruct(int(i)) for i in keep])
            if len(keep)
            else np.zeros((0, self.dimension), dtype=np.float32)
        )
        self._index = VectorIndex.build(vectors, "hnsw", keep, self.params)._index
        self._removed, self._selector = set(), None

    def _search_params(self) -> faiss.SearchParameters | None:
        if not self._removed:
            return None
        if self._selector is None:
            batch = faiss.IDSelectorBatch(np.fromiter(self._removed, dtype=np.int64))
            skip = faiss.IDSelectorNot(batch)
            params = faiss.SearchParametersHNSW(sel=skip, efSearch=self.params.ef_search)
            self._selector = (params, skip, batch)  # FAISS does not own them: keep them alive
        return self._selector[0]

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) for each query row; missing slots have id -1."""
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if self.size == 0:
            shape = (len(query), 1)
            return np.zeros(shape, dtype=np.float32), np.full(shape, -1, dtype=np.int64)
        k = max(1, min(k, self.size))
        if len(query) >= ONE_THREAD_BELOW:
            return self._index.search(query, k, params=self._search_params())
        threads = faiss.omp_get_max_threads()  # this thread's setting: others keep theirs
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(query, k, params=self._search_params())
        finally:
            faiss.omp_set_num_threads(threads)

    def save(self, path: Path) -> None:
        """Write atomically (a temporary file renamed over ``path``); filtered ids go too."""
        if self._removed:
            self._compact()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes may save at once
        faiss.write_index(self._index, str(tmp))
        tmp.replace(path)

    @classmethod
    def load(
        cls, path: Path, kind: IndexKind = "flat", params: IndexParams | None = None
    ) -> VectorIndex:
        """Read an index file, with a clear error when it is missing or damaged."""
        if not path.is_file():
            raise IndexFileError(f"vector index file not found: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexFileError(
                f"vector index file {path} is damaged or not a FAISS index"
            ) from exc
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVF)):
            raise IndexFileError(f"{path} is a FAISS index without ids; rebuild it")
        loaded = cls(index, kind, params)
        inner = index if isinstance(index, faiss.IndexIVF) else faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = loaded.params.ef_search
        elif isinstance(inner, faiss.IndexIVF):
            inner.nprobe = min(inner.nlist, loaded.params.nprobe)
        return loaded
