"""Reading only the sentences that matter (``reading_context="sentences"``): offsets stay exact,
never more text than the whole passage, and the real pipeline still answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.answer import Passage
from rag.passages import focus_sentences

DOC = (
    "Harbour Notes\n\n"
    "The harbour opened in 1802. Fishing boats came first. The lighthouse at Kestrel Point was "
    "built in 1874. It was designed by Mara Quill. Its lamp burns whale oil no longer. "
    "Ferries now leave hourly. The pier was rebuilt after the storm. Gulls nest on the roofs."
)


def _passage(text: str, start: int, end: int, doc_id: str = "d", score: float = 1.0) -> Passage:
    return Passage(doc_id=doc_id, title="", start=start, end=end, text=text[start:end], score=score)


def test_a_passage_is_cut_to_its_best_sentence_and_its_neighbours():
    start = DOC.index("The harbour")
    p = _passage(DOC, start, len(DOC))
    (cut,) = focus_sentences([p], "When was the lighthouse built?", lambda _: DOC, 1)
    assert cut.text == (
        "Fishing boats came first. The lighthouse at Kestrel Point was built in 1874. "
        "It was designed by Mara Quill."
    )
    assert DOC[cut.start : cut.end] == cut.text and cut.score == p.score
    (alone,) = focus_sentences([p], "When was the lighthouse built?", lambda _: DOC, 0)
    assert alone.text == "The lighthouse at Kestrel Point was built in 1874."


def test_disjoint_matches_become_several_passages_in_place():
    start = DOC.index("The harbour")
    tides = "Tide Tables"
    p, other = _passage(DOC, start, len(DOC)), _passage(tides, 0, 11, doc_id="e", score=0.5)
    docs = {"d": DOC, "e": tides}
    # "harbour" and "pier": one sentence each, far apart, equally rare
    out = focus_sentences([p, other], "harbour pier", docs.__getitem__, 0)
    assert [q.text for q in out] == [
        "The harbour opened in 1802.",
        "The pier was rebuilt after the storm.",
        "Tide Tables",  # the whole of a passage with nothing to go by
    ]
    assert [q.doc_id for q in out] == ["d", "d", "e"]


def test_a_passage_without_question_terms_is_read_whole():
    p = _passage(DOC, DOC.index("The harbour"), len(DOC))
    assert focus_sentences([p], "zeppelin manufacturers?", lambda _: DOC, 1) == [p]
    assert focus_sentences([p], "what is it?", lambda _: DOC, 1) == [p]  # no term at all


_WORDS = ["harbour", "pier", "storm", "lamp", "oil", "the", "was", "built", "1874", "Quill"]
_sentence = st.tuples(
    st.lists(st.sampled_from(_WORDS), min_size=1, max_size=8), st.sampled_from([".", "!", "?", ""])
).map(lambda wp: " ".join(wp[0]).capitalize() + wp[1])


@settings(max_examples=150, deadline=None)
@given(
    sentences=st.lists(_sentence, min_size=1, max_size=12),
    separators=st.lists(st.sampled_from([" ", "  ", "\n", "\n\n", " \n "]), min_size=12),
    cuts=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400)), min_size=1, max_size=4),
    question=st.lists(st.sampled_from(_WORDS + ["when", "who"]), min_size=1, max_size=5),
    neighbours=st.integers(0, 3),
)
def test_offsets_are_exact_and_never_more_text_than_the_passages(
    sentences, separators, cuts, question, neighbours
):
    text = "".join(s + sep for s, sep in zip(sentences, separators, strict=False))
    passages = []
    for a, b in cuts:
        a, b = sorted((min(a, len(text)), min(b, len(text))))
        if text[a:b].strip():
            passages.append(_passage(text, a, b, score=float(len(passages))))
    out = focus_sentences(passages, " ".join(question) + "?", lambda _: text, neighbours)
    for p in out:
        assert text[p.start : p.end] == p.text and p.text.strip()
        # every piece lies within a passage of the same score (its source)
        src = [q for q in passages if q.score == p.score]
        assert src and src[0].start <= p.start and p.end <= src[0].end
    assert sum(len(p.text) for p in out) <= sum(len(p.text) for p in passages)
    assert [p.score for p in out] == sorted(p.score for p in out)  # ranks kept in order


def test_the_pipeline_reads_less_and_still_answers(seed_pipeline, dev_questions):
    sentences = seed_pipeline.with_settings(reading_context="sentences")
    assert seed_pipeline.settings.reading_context == "passage"  # the default reads it all
    documents = seed_pipeline.store.documents
    for q in dev_questions:
        whole = seed_pipeline.search(q["question"])
        cut = sentences.search(q["question"])
        for p in cut:
            assert documents[p.doc_id].text[p.start : p.end] == p.text
            assert p.page == documents[p.doc_id].page_of(p.start)
        assert sum(len(p.text) for p in cut) <= sum(len(p.text) for p in whole)

    q = next(q for q in dev_questions if q["id"] == "dev-002")  # the 75th anniversary
    answer = sentences.ask(q["question"])
    assert not answer.abstained and "75th" in answer.answer
    assert answer.citations[0].doc_id == q["doc"]
    c = answer.citations[0]
    assert documents[c.doc_id].text[c.start : c.end] == answer.answer
    assert answer.passages == sentences.search(q["question"])  # what it read, as search lists
