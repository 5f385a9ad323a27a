"""BM25 over the chunks that can grow and shrink one document at a time (Lucene's formula, as
bm25s scores it: stemmed, English stop words removed, k1 1.5, b 0.75)."""

from __future__ import annotations

import contextlib
import logging
import math
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from rag.mapped_arrays import MAGIC, load_arrays, save_arrays

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)

_STEMMER = Stemmer.Stemmer("english")
BM25_FILE = "bm25.postings"  # the postings kept beside a store, memory-mapped when loaded
BM25_FILE_1 = "bm25.npz"  # what earlier versions kept (read whole)


def terms_of(texts: list[str]) -> list[list[str]]:
    """Each text's BM25 terms: lower-cased words, stop words dropped, stemmed."""
    if not texts:
        return []
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, show_progress=False, return_ids=False
    )


class _Base:
    """The chunks indexed at once, as compressed postings (numpy arrays, a few bytes a
    posting instead of a Python object); removals only clear a row's ``alive`` flag."""

    def __init__(self, chunks: Iterable[tuple[int, list[str]]]):
        vocab: dict[str, int] = {}
        # Typed arrays, not lists: a million chunks hold tens of millions of postings.
        ids, lengths, per_row = array("q"), array("i"), array("i")
        term_ids, counts = array("i"), array("i")
        for chunk_id, terms in chunks:
            tf = Counter(terms)
            ids.append(chunk_id)
            lengths.append(len(terms))
            term_ids.extend(vocab.setdefault(t, len(vocab)) for t in tf)
            counts.extend(tf.values())
            per_row.append(len(tf))
        order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[order]  # sorted: rows found by bisection
        self.lengths = np.asarray(lengths, dtype=np.float64)[order]
        self.alive = np.ones(len(ids), dtype=bool)
        rank = np.empty(len(ids), dtype=np.int32)
        rank[order] = np.arange(len(ids), dtype=np.int32)
        rows = np.repeat(rank, per_row)
        by_term = np.argsort(np.asarray(term_ids, dtype=np.int32), kind="stable")
        self.rows = rows[by_term]
        self.tfs = np.asarray(counts, dtype=np.float32)[by_term]
        postings = np.bincount(np.asarray(term_ids, dtype=np.int64), minlength=len(vocab))
        self.starts = np.concatenate([[0], np.cumsum(postings)]).astype(np.int64)
        self.vocab = vocab

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> _Base:
        base = cls.__new__(cls)
        for name in ("ids", "lengths", "rows", "tfs", "starts"):
            setattr(base, name, arrays[name])
        base.alive = np.ones(len(base.ids), dtype=bool)
        terms = (
            arrays["vocab"].tobytes().decode("utf-8").split("\n") if len(base.starts) > 1 else []
        )
        base.vocab = {t: i for i, t in enumerate(terms)}
        return base

    def arrays(self) -> dict[str, np.ndarray]:
        vocab = "\n".join(sorted(self.vocab, key=self.vocab.__getitem__)).encode("utf-8")
        return {
            "ids": self.ids, "lengths": self.lengths, "rows": self.rows, "tfs": self.tfs,
            "starts": self.starts, "vocab": np.frombuffer(vocab, dtype=np.uint8),
        }  # fmt: skip

    def row_of(self, chunk_id: int) -> int | None:
        row = int(np.searchsorted(self.ids, chunk_id))
        return row if row < len(self.ids) and self.ids[row] == chunk_id else None

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, tfs) of the live chunks holding ``term``."""
        t = self.vocab.get(term)
        if t is None:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        rows = self.rows[self.starts[t] : self.starts[t + 1]]
        tfs = self.tfs[self.starts[t] : self.starts[t + 1]]
        live = self.alive[rows]
        return rows[live], tfs[live]


class SparseIndex:
    """Okapi BM25 keyed by chunk id. The chunks of :meth:`build` sit in compact arrays; those
    added later in a small dictionary; statistics (document frequencies, the mean length) are
    computed over both, so adding or removing a document costs its own terms, not the index's."""

    def __init__(self, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self._base = _Base(())
        self._postings: dict[str, dict[int, int]] = {}  # chunks added after the build
        self._lengths: dict[int, int] = {}
        self._terms: dict[int, tuple[str, ...]] = {}
        self._size = 0
        self._total_length = 0.0

    @classmethod
    def build(cls, chunks: Iterable[tuple[int, list[str]]]) -> SparseIndex:
        """An index over ``(chunk_id, terms)`` pairs."""
        index = cls()
        index._base = _Base(chunks)
        index._size = len(index._base.ids)
        index._total_length = float(index._base.lengths.sum())
        return index

    @property
    def size(self) -> int:
        return self._size

    def ids(self) -> np.ndarray:
        """Every chunk id indexed."""
        base = self._base.ids[self._base.alive]
        return np.concatenate([base, np.fromiter(self._lengths, dtype=np.int64)])

    def save(self, path: Path) -> None:
        """Write the built postings (one file, atomically); chunks changed since are not in
        it, and :meth:`load` callers catch up by id."""
        save_arrays(path, self._base.arrays())

    @classmethod
    def load(cls, path: Path) -> SparseIndex:
        """What :meth:`save` wrote, memory-mapped (or an earlier version's ``.npz``, read
        whole); ValueError or OSError when it is unusable."""
        with open(path, "rb") as f:
            mapped = f.read(len(MAGIC)) == MAGIC
        if mapped:
            base = _Base.from_arrays(load_arrays(path))
        else:
            with np.load(path) as saved:
                base = _Base.from_arrays({k: saved[k] for k in saved.files})
        index = cls()
        index._base = base
        index._size = len(base.ids)
        index._total_length = float(base.lengths.sum())
        return index

    def add(self, chunk_id: int, terms: list[str]) -> None:
        if chunk_id in self._lengths or self._base.row_of(chunk_id) is not None:
            raise ValueError(f"chunk {chunk_id} is already indexed")
        for term, tf in Counter(terms).items():
            self._postings.setdefault(term, {})[chunk_id] = tf
        self._lengths[chunk_id] = len(terms)
        self._terms[chunk_id] = tuple(set(terms))
        self._size += 1
        self._total_length += len(terms)

    def remove(self, chunk_id: int) -> None:
        """Forget one chunk (nothing happens when it is not indexed)."""
        if chunk_id in self._lengths:
            for term in self._terms.pop(chunk_id):
                postings = self._postings[term]
                del postings[chunk_id]
                if not postings:
                    del self._postings[term]
            self._total_length -= self._lengths.pop(chunk_id)
            self._size -= 1
            return
        row = self._base.row_of(chunk_id)
        if row is not None and self._base.alive[row]:
            self._base.alive[row] = False
            self._total_length -= self._base.lengths[row]
            self._size -= 1

    def ids_with(self, term: str) -> np.ndarray:
        """The chunk ids holding ``term`` (an analysed term: see :func:`terms_of`)."""
        rows, _ = self._base.postings(term)
        added = self._postings.get(term, {})
        return np.concatenate(
            [self._base.ids[rows], np.fromiter(added, dtype=np.int64, count=len(added))]
        )

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, chunk ids) by BM25; empty when no query term is indexed."""
        n, base = self._size, self._base
        found = [(t, *base.postings(t), self._postings.get(t, {})) for t in terms_of([query])[0]]
        found = [f for f in found if len(f[1]) or f[3]]
        if not found or n == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        mean_length = self._total_length / n
        base_scores = np.zeros(len(base.ids), dtype=np.float64)
        added: dict[int, float] = {}
        for _, rows, tfs, postings in found:  # a repeated query term counts each time
            df = len(rows) + len(postings)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = tfs.astype(np.float64)
            norm = self.k1 * ((1 - self.b) + self.b * base.lengths[rows] / mean_length)
            np.add.at(base_scores, rows, idf * tf / (norm + tf))
            for chunk_id, count in postings.items():
                norm_i = self.k1 * ((1 - self.b) + self.b * self._lengths[chunk_id] / mean_length)
                added[chunk_id] = added.get(chunk_id, 0.0) + idf * count / (norm_i + count)
        hit = np.flatnonzero(base_scores > 0)
        if len(hit) > k:  # the k best, and whatever ties the k-th (ties go by chunk id below)
            kth = np.partition(base_scores[hit], len(hit) - k)[len(hit) - k]
            hit = hit[base_scores[hit] >= kth]
        ranked = [(int(base.ids[r]), float(base_scores[r])) for r in hit]
        ranked += [(i, s) for i, s in added.items() if s > 0]
        ranked = sorted(ranked, key=lambda item: (-item[1], item[0]))[:k]
        return (
            np.array([s for _, s in ranked], dtype=np.float32),
            np.array([i for i, _ in ranked], dtype=np.int64),
        )


def convert_earlier(earlier: Path, path: Path) -> None:
    """An earlier version's postings kept again at ``path`` (mapped), then removed; unusable
    ones are only removed (the caller builds anew)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        SparseIndex.load(earlier).save(path)
    earlier.unlink()
