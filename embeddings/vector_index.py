"""A FAISS inner-product index over normalised vectors, keyed by caller ids (chunk ids), that
takes additions and removals without a rebuild; saved and loaded as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw", "ivf"]


class IndexFileError(RuntimeError):
    """The index file is missing, truncated or not a FAISS index."""


def _inner(kind: IndexKind, dim: int, training: np.ndarray) -> faiss.Index:
    if kind == "flat" or (kind == "ivf" and not len(training)):  # IVF needs data to train on
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 64
        return index
    if kind == "ivf":
        nlist = max(1, min(1024, int(np.sqrt(len(training)))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        quantizer.this.disown()  # the IVF index owns and frees its quantizer
        index.own_fields = True
        if len(training):
            index.train(training)
        index.nprobe = min(nlist, 16)
        return index
    raise ValueError(f"unknown index kind {kind!r}; use flat, hnsw or ivf")


class VectorIndex:
    """Exact (``flat``) or approximate (``hnsw``, ``ivf``) cosine search over unit vectors,
    each stored under an integer id (``IndexIDMap2``)."""

    def __init__(self, index: faiss.IndexIDMap2, kind: IndexKind = "flat"):
        self._index = index
        self.kind = kind

    @classmethod
    def build(
        cls, vectors: np.ndarray, kind: IndexKind = "flat", ids: np.ndarray | None = None
    ) -> VectorIndex:
        """Index the rows of ``vectors`` under ``ids`` (default: row numbers)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-d array")
        index = cls(faiss.IndexIDMap2(_inner(kind, vectors.shape[1], vectors)), kind)
        index.add(vectors, np.arange(len(vectors)) if ids is None else ids)
        return index

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if len(vectors):
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        """Drop these ids; HNSW cannot delete in place, so it is rebuilt from what stays."""
        if not ids:
            return
        if self.kind != "hnsw":
            self._index.remove_ids(np.asarray(ids, dtype=np.int64))
            return
        gone = set(ids)
        keep = np.array(
            [i for i in faiss.vector_to_array(self._index.id_map) if i not in gone],
            dtype=np.int64,
        )
        vectors = (
            np.stack([self._index.reconstruct(int(i)) for i in keep])
            if len(keep)
            else (np.zeros((0, self.dimension), dtype=np.float32))
        )
        self._index = VectorIndex.build(vectors, "hnsw", keep)._index

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) for each query row; missing slots have id -1."""
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        if self.size == 0:
            shape = (len(query), 1)
            return np.zeros(shape, dtype=np.float32), np.full(shape, -1, dtype=np.int64)
        k = max(1, min(k, self.size))
        return self._index.search(query, k)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: IndexKind = "flat") -> VectorIndex:
        """Read an index file, with a clear error when it is missing or damaged."""
        if not path.is_file():
            raise IndexFileError(f"vector index file not found: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexFileError(
                f"vector index file {path} is damaged or not a FAISS index"
            ) from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexFileError(f"{path} is a FAISS index without ids; rebuild it")
        return cls(index, kind)
