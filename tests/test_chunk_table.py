"""The chunk table behaves as the dict of Chunks it replaces, through any run of changes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.chunk_table import ChunkTable
from rag.chunking import Chunk
from rag.documents import Document

DOC_IDS = ["a.txt", "b.txt", "c.md", "d.pdf"]


def _document(doc_id: str, version: int) -> Document:
    text = f"{doc_id} version {version}: " + " ".join(f"w{version}{i}" for i in range(40))
    return Document(doc_id=doc_id, title=doc_id.upper(), text=text, content_hash=text[:12])


# each step replaces (or, with no chunks, removes) some documents
STEPS = st.lists(
    st.dictionaries(st.sampled_from(DOC_IDS), st.integers(0, 4), min_size=1, max_size=3),
    min_size=1,
    max_size=8,
)


@settings(max_examples=80, deadline=None)
@given(steps=STEPS)
def test_the_table_is_the_dict_it_replaces(steps) -> None:
    documents: dict[str, Document] = {}
    model: dict[int, Chunk] = {}
    table = ChunkTable.from_rows(documents, [])
    next_id = 1
    for version, step in enumerate(steps):
        documents = dict(documents)
        model = {i: c for i, c in model.items() if c.doc_id not in step}
        rows = []
        for doc_id, n in step.items():
            documents.pop(doc_id, None)
            if n:
                documents[doc_id] = doc = _document(doc_id, version)
            for k in range(n):
                start, end = 3 * k, 3 * k + 10
                model[next_id] = Chunk(doc_id, start, end, doc.text[start:end])
                rows.append((next_id, doc_id, start, end))
                next_id += 1
        old = dict(table)
        table = table.changed(step, rows, documents)
        assert dict(table) == model and len(table) == len(model)
        assert list(table) == sorted(model) and table.ids().tolist() == sorted(model)
        counts = {}
        for c in model.values():
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        assert table.counts() == counts
        for doc_id in DOC_IDS:
            mine = sorted(i for i, c in model.items() if c.doc_id == doc_id)
            assert table.ids_of([doc_id]).tolist() == mine
        probe = np.array([0, *model, next_id + 5], dtype=np.int64)
        assert table.doc_ids_of(probe) == {c.doc_id for c in model.values()}
        assert 0 not in table and next_id not in table and "1" not in table
        assert all(old[i] == model[i] for i in old if i in model)  # a kept chunk is unchanged


def test_rows_out_of_order_are_sorted_by_id() -> None:
    doc = _document("a.txt", 0)
    table = ChunkTable.from_rows({"a.txt": doc}, [(9, "a.txt", 0, 4), (2, "a.txt", 4, 9)])
    assert list(table) == [2, 9]
    assert table[9] == Chunk("a.txt", 0, 4, doc.text[0:4])
    assert table[2].text == doc.text[4:9]
