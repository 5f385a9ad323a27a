"""A FAISS inner-product index over normalised vectors, saved and loaded as one file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw", "ivf"]


class IndexFileError(RuntimeError):
    """The index file is missing, truncated or not a FAISS index."""


class VectorIndex:
    """Exact (``flat``) or approximate (``hnsw``, ``ivf``) cosine search over unit vectors."""

    def __init__(self, index: faiss.Index):
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, kind: IndexKind = "flat") -> VectorIndex:
        """Index the rows of ``vectors`` (ids are row numbers)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError("vectors must be a 2-d array")
        dim = vectors.shape[1]
        if kind == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = 64
        elif kind == "ivf":
            nlist = max(1, min(1024, int(np.sqrt(len(vectors)))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            quantizer.this.disown()  # the IVF index owns and frees its quantizer
            index.own_fields = True
            index.train(vectors)
            index.nprobe = min(nlist, 16)
        else:
            raise ValueError(f"unknown index kind {kind!r}; use flat, hnsw or ivf")
        index.add(vectors)
        return cls(index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) for each query row; missing slots have id -1."""
        query = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        k = max(1, min(k, self.size))
        scores, ids = self._index.search(query, k)
        return scores, ids

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index file, with a clear error when it is missing or damaged."""
        if not path.is_file():
            raise IndexFileError(f"vector index file not found: {path}")
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:
            raise IndexFileError(
                f"vector index file {path} is damaged or not a FAISS index"
            ) from exc
