"""How an approximate vector index is built and searched: one home for the defaults that the
settings, the FAISS index and the Milvus collection share (this module imports no engine)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class IndexParams:
    """How an approximate index is built and searched (flat ignores them).

    ``hnsw_m``: graph degree; ``ef_search``: HNSW candidates kept while searching (recall
    against speed: at 1M chunks 256 gives recall@10 .979 against 128's .961 for +0.7 ms a search,
    docs/studies/scale-hit-at-5.md); ``nprobe``: IVF lists searched; ``nlist``: IVF lists (0: the
    square root of the size)."""

    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 256
    nprobe: int = 16
    nlist: int = 0

    def as_dict(self) -> dict:
        return asdict(self)
