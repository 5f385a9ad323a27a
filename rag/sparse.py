"""BM25 over the chunks that can grow and shrink one document at a time (Lucene's formula, as
bm25s scores it: stemmed, English stop words removed, k1 1.5, b 0.75)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable

import bm25s
import numpy as np
import Stemmer

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)

_STEMMER = Stemmer.Stemmer("english")


def terms_of(texts: list[str]) -> list[list[str]]:
    """Each text's BM25 terms: lower-cased words, stop words dropped, stemmed."""
    if not texts:
        return []
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, show_progress=False, return_ids=False
    )


class SparseIndex:
    """Okapi BM25 keyed by chunk id. Statistics (document frequencies, the mean length) are
    kept current, so adding or removing a document costs its own terms, not the index's."""

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self._postings: dict[str, dict[int, int]] = {}
        self._lengths: dict[int, int] = {}
        self._terms: dict[int, tuple[str, ...]] = {}
        self._total_length = 0

    @classmethod
    def build(cls, chunks: Iterable[tuple[int, list[str]]]) -> SparseIndex:
        """An index over ``(chunk_id, terms)`` pairs."""
        index = cls()
        for chunk_id, terms in chunks:
            index.add(chunk_id, terms)
        return index

    @property
    def size(self) -> int:
        return len(self._lengths)

    def add(self, chunk_id: int, terms: list[str]) -> None:
        if chunk_id in self._lengths:
            raise ValueError(f"chunk {chunk_id} is already indexed")
        for term, tf in Counter(terms).items():
            self._postings.setdefault(term, {})[chunk_id] = tf
        self._lengths[chunk_id] = len(terms)
        self._terms[chunk_id] = tuple(set(terms))
        self._total_length += len(terms)

    def remove(self, chunk_id: int) -> None:
        """Forget one chunk (nothing happens when it is not indexed)."""
        if chunk_id not in self._lengths:
            return
        for term in self._terms.pop(chunk_id):
            postings = self._postings[term]
            del postings[chunk_id]
            if not postings:
                del self._postings[term]
        self._total_length -= self._lengths.pop(chunk_id)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, chunk ids) by BM25; empty when no query term is indexed."""
        n = len(self._lengths)
        terms = [t for t in terms_of([query])[0] if t in self._postings]
        if not terms or n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        mean_length = self._total_length / n
        scores: dict[int, float] = {}
        for term in terms:  # a repeated query term counts each time, as in bm25s
            postings = self._postings[term]
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            ids = np.fromiter(postings.keys(), dtype=np.int64, count=len(postings))
            tf = np.fromiter(postings.values(), dtype=np.float64, count=len(postings))
            lengths = np.fromiter(
                (self._lengths[i] for i in postings), dtype=np.float64, count=len(postings)
            )
            norm = self.k1 * ((1 - self.b) + self.b * lengths / mean_length)
            for chunk_id, score in zip(
                ids.tolist(), (idf * tf / (norm + tf)).tolist(), strict=True
            ):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + score
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
        ranked = [(i, s) for i, s in ranked if s > 0]
        return (
            np.array([s for _, s in ranked], dtype=np.float32),
            np.array([i for i, _ in ranked], dtype=np.int64),
        )
