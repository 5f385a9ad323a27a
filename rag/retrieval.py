"""Dense, BM25 and hybrid retrieval over an :class:`IndexStore`; hybrid fuses the two rankings
(convex by default, RRF or scaled) and, over large stores, adds lexical evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, get_args

import numpy as np

from embeddings.encoder import Encoder
from rag.config import Fusion, LexicalEvidence, RetrievalMode, Settings
from rag.lexical import lexical_evidence
from rag.store import IndexStore

T = TypeVar("T")

# How much deeper than k a query limited to named documents looks for their chunks.
SCOPE_DEPTH = 4


def _choice(what: str, value: T, options: object) -> T:
    """``value`` if the ``Literal`` ``options`` holds it, else a ValueError naming them."""
    if value not in get_args(options):
        raise ValueError(f"unknown {what} {value!r}; use {', '.join(get_args(options))}")
    return value


@dataclass(frozen=True)
class Hit:
    """A chunk (by position in the store) and its score under the strategy that found it."""

    chunk_id: int
    score: float


class Retriever:
    """One small method per strategy; :meth:`search` dispatches on the mode."""

    def __init__(
        self,
        store: IndexStore,
        encoder: Encoder,
        candidates: int = 20,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        fusion: Fusion = "convex",
        lexical: LexicalEvidence = "auto",
        lexical_weight: float = 0.5,
        lexical_candidates: int = 50,
        lexical_min_chunks: int = 50_000,
    ):
        """``candidates``: each ranking's pool for a hybrid search; ``lexical``: whether a hybrid
        search adds lexical evidence (``auto``: over a store of at least ``lexical_min_chunks``
        chunks); ``lexical_weight``: what a candidate then gains per unit of
        :func:`lexical_evidence` (0 to 2) on a fused score where first place in both rankings
        counts 1; ``lexical_candidates``: each ranking's pool, at least, when it is on."""
        self.store = store
        self.encoder = encoder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.fusion = _choice("fusion", fusion, Fusion)
        self.lexical = _choice("lexical evidence", lexical, LexicalEvidence)
        self.lexical_weight = lexical_weight
        self.lexical_candidates = lexical_candidates
        self.lexical_min_chunks = lexical_min_chunks

    @classmethod
    def from_settings(cls, settings: Settings, store: IndexStore, encoder: Encoder) -> Retriever:
        s = settings
        return cls(
            store,
            encoder,
            s.candidates,
            s.rrf_k,
            s.dense_weight,
            s.bm25_weight,
            s.fusion,
            s.lexical_evidence,
            s.lexical_weight,
            s.lexical_candidates,
            s.auto_lexical_min_chunks,
        )

    def evidence_on(self) -> bool:
        """Whether a hybrid search now adds lexical evidence (``auto``: by the store's size)."""
        if self.lexical == "auto":
            return len(self.store.chunks) >= self.lexical_min_chunks
        return self.lexical == "on"

    def dense_many(self, vectors: np.ndarray, ks: list[int]) -> list[list[Hit]]:
        """The ``k`` chunks most cosine-similar to each row of ``vectors``: one index search per
        distinct ``k``, as a search of many rows costs little more than one."""
        out: list[list[Hit]] = [[] for _ in ks]
        for k in sorted(set(ks)):
            rows = [r for r, kk in enumerate(ks) if kk == k]
            scores, ids = self.store.vectors.search(vectors[rows], k)
            for r, row_scores, row_ids in zip(rows, scores, ids, strict=True):
                out[r] = [
                    Hit(int(i), float(s))
                    for s, i in zip(row_scores, row_ids, strict=True)
                    if i >= 0
                ]
        return out

    def bm25(self, query: str, k: int) -> list[Hit]:
        """Okapi BM25 over the chunk texts."""
        scores, ids = self.store.sparse.search(query, k)
        return [Hit(int(i), float(s)) for s, i in zip(scores, ids, strict=True)]

    def hybrid(self, query: str, k: int, dense_hits: list[Hit], evidence: bool) -> list[Hit]:
        """The query's dense candidates (``dense_hits``, :meth:`pool` of them) and its BM25
        ones fused by :meth:`convex`, :meth:`rrf` or :meth:`scaled`, then, with ``evidence``
        (:meth:`evidence_on`, read once per batch), :meth:`with_evidence`."""
        n = self.pool(k, evidence)
        rankings = [
            (self.dense_weight, dense_hits),
            (self.bm25_weight, self.bm25(query, n)),
        ]
        fuse = {"convex": self.convex, "rrf": self.rrf, "scaled": self.scaled}[self.fusion]
        fused = fuse(rankings)
        if evidence and self.lexical_weight:
            fused = self.with_evidence(query, fused)
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [Hit(i, s) for i, s in best]

    def with_evidence(self, query: str, fused: dict[int, float]) -> dict[int, float]:
        """``fused`` plus ``lexical_weight`` times each candidate's lexical evidence; RRF's
        scores first scaled so that first place in every ranking counts 1, as in convex."""
        scale = 1.0
        if self.fusion == "rrf":
            scale = (self.rrf_k + 1) / ((self.dense_weight + self.bm25_weight) or 1.0)
        chunks = self.store.chunks
        return {
            c: s * scale + self.lexical_weight * lexical_evidence(query, chunks[c].text)
            for c, s in fused.items()
        }

    def pool(self, k: int, evidence: bool = False) -> int:
        """Candidates each ranking gives a hybrid search for ``k`` hits (deeper with
        ``evidence``: the evidence re-ranks candidates fusion alone would leave out)."""
        return max(k, self.candidates, self.lexical_candidates if evidence else 0)

    def convex(self, rankings: list[tuple[float, list[Hit]]]) -> dict[int, float]:
        """Weighted mean of min-max normalised scores, in [0, 1]: a ranking's best candidate
        counts 1, its last 0, and a chunk it did not find 0 (a lone candidate counts 1)."""
        total = sum(weight for weight, _ in rankings) or 1.0
        fused: dict[int, float] = {}
        for weight, hits in rankings:
            if not hits:
                continue
            hi, lo = hits[0].score, hits[-1].score
            for hit in hits:
                norm = (hit.score - lo) / (hi - lo) if hi > lo else 1.0
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / total * norm
        return fused

    def scaled(self, rankings: list[tuple[float, list[Hit]]]) -> dict[int, float]:
        """Weighted mean of scores over their ranking's best, in [0, 1]: first place counts 1,
        and a chunk a ranking did not find counts as its last, the most it could have scored
        there. Unlike min-max, a ranking whose scores bunch together (dense search among a
        million chunks) sways the order less. Scores below 0 count 0."""
        total = sum(weight for weight, _ in rankings) or 1.0
        parts = []
        for weight, hits in rankings:
            if hits:
                best = hits[0].score
                norm = {h.chunk_id: max(h.score, 0.0) / best if best > 0 else 1.0 for h in hits}
                parts.append((weight / total, norm, norm[hits[-1].chunk_id]))
        found = {c for _, norm, _ in parts for c in norm}
        return {c: sum(w * norm.get(c, last) for w, norm, last in parts) for c in found}

    def rrf(self, rankings: list[tuple[float, list[Hit]]]) -> dict[int, float]:
        """Weighted reciprocal rank fusion: the sum of ``weight / (rrf_k + rank)``."""
        fused: dict[int, float] = {}
        for weight, hits in rankings:
            for rank, hit in enumerate(hits, start=1):
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (self.rrf_k + rank)
        return fused

    def search(self, query: str, k: int, mode: RetrievalMode = "hybrid") -> list[Hit]:
        return self.search_many([query], [k], [mode])[0]

    def search_many(
        self,
        queries: list[str],
        ks: list[int],
        modes: list[RetrievalMode],
        scopes: list[set[str] | None] | None = None,
    ) -> list[list[Hit]]:
        """Each query's ``k`` best hits under its mode; the queries that need embedding are
        embedded in one batch (how the service answers concurrent questions). A query with a
        scope (document ids) looks ``SCOPE_DEPTH`` times deeper and ranks the hits in those
        documents first: a preference, so a wrong scope still leaves the best hits."""
        scopes = scopes or [None] * len(queries)
        hits = self._search_many(
            queries, [k * SCOPE_DEPTH if s else k for k, s in zip(ks, scopes, strict=True)], modes
        )
        return [
            h if not scope else self._scoped(h, scope)[:k]
            for h, k, scope in zip(hits, ks, scopes, strict=True)
        ]

    def _scoped(self, hits: list[Hit], scope: set[str]) -> list[Hit]:
        """``hits`` with those in the ``scope`` documents first, each part in its order."""
        chunks = self.store.chunks
        inside = [h for h in hits if h.chunk_id in chunks and chunks[h.chunk_id].doc_id in scope]
        kept = {h.chunk_id for h in inside}
        return inside + [h for h in hits if h.chunk_id not in kept]

    def _search_many(
        self, queries: list[str], ks: list[int], modes: list[RetrievalMode]
    ) -> list[list[Hit]]:
        if unknown := set(modes) - set(get_args(RetrievalMode)):
            raise ValueError(f"unknown retrieval mode {unknown.pop()!r}; use hybrid, dense or bm25")
        dense = [i for i, mode in enumerate(modes) if mode != "bm25"]
        asked = self.encoder.encode_queries([queries[i] for i in dense])
        evidence = self.evidence_on()
        depths = [ks[i] if modes[i] == "dense" else self.pool(ks[i], evidence) for i in dense]
        found = dict(zip(dense, self.dense_many(asked, depths), strict=True))
        out = []
        for i, (query, k, mode) in enumerate(zip(queries, ks, modes, strict=True)):
            if mode == "bm25":
                out.append(self.bm25(query, k))
            elif mode == "dense":
                out.append(found[i])
            else:
                out.append(self.hybrid(query, k, found[i], evidence))
        return out
