"""Where every chunk lies, as arrays sorted by chunk id: a :class:`Chunk` is made when asked
for, so a million chunks cost four arrays rather than a million objects and their texts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from rag.chunking import Chunk
from rag.documents import Document


class ChunkTable(Mapping[int, Chunk]):
    """chunk id -> :class:`Chunk` over ``documents`` (``documents[c.doc_id].text[c.start:c.end]
    == c.text``). Never changed: :meth:`changed` returns a new table, so readers on other
    threads may hold this one."""

    def __init__(
        self,
        documents: Mapping[str, Document],
        doc_ids: Sequence[str],
        ids: np.ndarray,
        docs: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
    ):
        if np.any(ids[1:] < ids[:-1]):  # a refresh appends larger ids: sorting is rare
            order = np.argsort(ids, kind="stable")
            ids, docs, starts, ends = ids[order], docs[order], starts[order], ends[order]
        self.documents = documents
        self._doc_ids = list(doc_ids)  # docs[i] indexes this
        self._index = {d: i for i, d in enumerate(self._doc_ids)}
        self._ids, self._docs, self._starts, self._ends = ids, docs, starts, ends

    @classmethod
    def from_rows(
        cls, documents: Mapping[str, Document], rows: Iterable[tuple[int, str, int, int]]
    ) -> ChunkTable:
        """From (id, doc_id, start, end) rows, as :meth:`DocumentStore.chunk_rows` gives them."""
        empty = np.empty(0, dtype=np.int64)
        table = cls(documents, [], empty, empty.astype(np.int32), empty, empty)
        return table.changed((), rows, documents)

    # -- Mapping ---------------------------------------------------------------------------
    def _position(self, chunk_id: object) -> int:
        if not isinstance(chunk_id, int | np.integer):
            return -1
        pos = int(np.searchsorted(self._ids, chunk_id))
        return pos if pos < len(self._ids) and self._ids[pos] == chunk_id else -1

    def __getitem__(self, chunk_id: int) -> Chunk:
        pos = self._position(chunk_id)
        if pos < 0:
            raise KeyError(chunk_id)
        doc_id = self._doc_ids[self._docs[pos]]
        start, end = int(self._starts[pos]), int(self._ends[pos])
        return Chunk(doc_id, start, end, self.documents[doc_id].text[start:end])

    def __contains__(self, chunk_id: object) -> bool:
        return self._position(chunk_id) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)

    # -- by document -----------------------------------------------------------------------
    def ids(self) -> np.ndarray:
        """Every chunk id, ascending."""
        return self._ids

    def doc_ids_of(self, chunk_ids: np.ndarray) -> set[str]:
        """The documents these chunk ids belong to (ids not in the table are skipped)."""
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        if not len(self._ids) or not len(chunk_ids):
            return set()
        pos = np.minimum(np.searchsorted(self._ids, chunk_ids), len(self._ids) - 1)
        pos = pos[self._ids[pos] == chunk_ids]
        return {self._doc_ids[i] for i in np.unique(self._docs[pos]).tolist()}

    def counts(self) -> dict[str, int]:
        """doc_id -> how many chunks it has (documents with none are absent)."""
        counts = np.bincount(self._docs, minlength=len(self._doc_ids))
        return {self._doc_ids[i]: int(counts[i]) for i in np.flatnonzero(counts).tolist()}

    def ids_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The chunk ids of these documents."""
        wanted = [self._index[d] for d in doc_ids if d in self._index]
        return self._ids[np.isin(self._docs, wanted)] if wanted else self._ids[:0]

    def changed(
        self,
        gone_docs: Iterable[str],
        rows: Iterable[tuple[int, str, int, int]],
        documents: Mapping[str, Document],
    ) -> ChunkTable:
        """A new table without the chunks of ``gone_docs``, with these (id, doc_id, start, end)
        rows added, over ``documents``."""
        gone = [self._index[d] for d in gone_docs if d in self._index]
        keep = ~np.isin(self._docs, gone) if gone else np.ones(len(self._ids), dtype=bool)
        doc_ids, index = list(self._doc_ids), dict(self._index)
        new_ids, new_docs, new_starts, new_ends = [], [], [], []
        for chunk_id, doc_id, start, end in rows:
            i = index.get(doc_id)
            if i is None:
                i = index[doc_id] = len(doc_ids)
                doc_ids.append(doc_id)
            new_ids.append(chunk_id)
            new_docs.append(i)
            new_starts.append(start)
            new_ends.append(end)
        return ChunkTable(
            documents,
            doc_ids,
            np.concatenate([self._ids[keep], np.array(new_ids, dtype=np.int64)]),
            np.concatenate([self._docs[keep], np.array(new_docs, dtype=np.int32)]),
            np.concatenate([self._starts[keep], np.array(new_starts, dtype=np.int64)]),
            np.concatenate([self._ends[keep], np.array(new_ends, dtype=np.int64)]),
        )
