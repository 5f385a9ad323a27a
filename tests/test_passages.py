"""Merging retrieved chunks that overlap or touch, over the real seed index."""

from __future__ import annotations

from rag.answer import Passage
from rag.passages import merge_adjacent


def _passage(pipe, chunk_id: int, score: float) -> Passage:
    c = pipe.store.chunks[chunk_id]
    return Passage(doc_id=c.doc_id, title="", start=c.start, end=c.end, text=c.text, score=score)


def test_chunks_that_overlap_or_touch_are_read_as_one_passage(seed_pipeline):
    chunks = seed_pipeline.store.chunks
    doc_id = chunks[min(chunks)].doc_id
    ids = sorted(i for i, c in chunks.items() if c.doc_id == doc_id)
    assert len(ids) >= 6
    a, b, c, far = ids[0], ids[1], ids[2], ids[5]
    other = next(i for i, ch in chunks.items() if ch.doc_id != doc_id)
    text = seed_pipeline.store.documents[doc_id].text
    # consecutive chunks overlap, or only whitespace lies between them
    assert not text[chunks[a].end : chunks[b].start].strip()
    assert not text[chunks[b].end : chunks[c].start].strip()

    ranked = [
        _passage(seed_pipeline, i, s)
        for i, s in ((far, 0.9), (c, 0.8), (other, 0.7), (a, 0.6), (b, 0.5))
    ]
    merged = merge_adjacent(ranked, lambda d: seed_pipeline.store.documents[d].text)

    assert [(p.doc_id, p.start, p.end) for p in merged] == [
        (doc_id, chunks[far].start, chunks[far].end),
        (doc_id, chunks[a].start, chunks[c].end),  # a, b, c: bridged by b; ranked as c was
        (chunks[other].doc_id, chunks[other].start, chunks[other].end),
    ]
    assert merged[1].text == text[chunks[a].start : chunks[c].end]
    assert merged[1].score == 0.8


def test_search_returns_no_two_passages_that_touch(seed_pipeline, dev_questions):
    docs = seed_pipeline.store.documents
    for q in dev_questions:
        passages = seed_pipeline.search(q["question"])
        for p in passages:
            assert docs[p.doc_id].text[p.start : p.end] == p.text
        for i, p in enumerate(passages):
            for o in passages[i + 1 :]:
                if o.doc_id == p.doc_id:
                    lo, hi = sorted((p, o), key=lambda x: x.start)
                    assert docs[p.doc_id].text[lo.end : hi.start].strip(), q["id"]
