"""Questions that name their document ("according to the Al Jazeera report, ..."): the phrase
is found only when its head is a kind of document, the rest is what the reader reads, and the
real pipeline answers such a question as it answers the plain one."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.attribution import named_documents, split_attribution
from rag.readers.words import content_words
from rag.retrieval import SCOPE_DEPTH


@pytest.mark.parametrize(
    ("question", "core", "phrase"),
    [
        (
            "According to the Al Jazeera report, what did Lavrov say about Asia?",
            "What did Lavrov say about Asia?",
            "According to the Al Jazeera report",
        ),
        (
            "In the article on complexity theory, what is a decision problem?",
            "What is a decision problem?",
            "In the article on complexity theory",
        ),
        (
            "Who leads the ministry, according to the Xinhua piece?",
            "Who leads the ministry?",
            "according to the Xinhua piece",
        ),
        (
            "What is a decision problem (from the complexity theory article)?",
            "What is a decision problem?",
            "from the complexity theory article",
        ),
        (
            "As reported in the Diplomat story about the visit, when did Putin arrive?",
            "When did Putin arrive?",
            "As reported in the Diplomat story about the visit",
        ),
    ],
)
def test_a_phrase_naming_the_document_is_split_off(question, core, phrase):
    got = split_attribution(question)
    assert (got.core, got.attribution) == (core, phrase)


@pytest.mark.parametrize(
    "question",
    [
        # a source the text itself quotes, not the document
        "According to Oxfam, the 85 richest people have wealth equal to how many average people?",
        "How many people lived in Fresno in 2000, according to the Census Bureau?",
        "According to the People's Daily, what did Lavrov stress?",
        "According to a 1955 review, what were savings by the wealthy thought to offset?",
        # a document noun that is what the question asks about
        "What is the article about?",
        "Where did the story take place?",
        # nothing left to ask
        "According to the report, what is it?",
    ],
)
def test_a_source_in_the_text_or_a_question_about_a_document_is_kept(question):
    got = split_attribution(question)
    assert got.attribution is None and got.core == question


@given(st.text(max_size=200))
def test_property_the_core_is_the_question_or_still_asks_something(question):
    got = split_attribution(question)
    assert got.question == question
    if got.attribution is None:
        assert got.core == question
    else:
        assert content_words(got.core) and len(got.core) < len(question)


def test_the_pipeline_reads_an_attributed_question_as_the_plain_one(seed_pipeline, dev_questions):
    assert seed_pipeline.settings.attribution == "scope"  # the default
    dropping = seed_pipeline.with_settings(attribution="drop")
    q = next(q for q in dev_questions if q["id"] == "dev-002")  # the 75th anniversary
    plain = dropping.ask(q["question"])
    named = dropping.ask(
        f"According to the Al Jazeera report, {q['question'][0].lower()}{q['question'][1:]}"
    )
    assert not named.abstained and named.answer == plain.answer and "75th" in named.answer
    assert named.citations == plain.citations
    assert named.question.startswith("According to the Al Jazeera report")  # as asked
    reads = seed_pipeline.with_settings(attribution="read")._plan(named.question).read
    assert reads == named.question and dropping._plan(named.question).read == plain.question


def test_the_documents_a_phrase_names_are_those_holding_its_name(seed_pipeline):
    store = seed_pipeline.store
    jazeera = {d for d, doc in store.documents.items() if "Al Jazeera" in doc.text}
    assert len(jazeera) == 1  # one seed article is Al Jazeera's
    assert (
        named_documents("According to the Al Jazeera report", store.sparse, store.chunks) == jazeera
    )
    assert named_documents("in the Zorblat dispatch", store.sparse, store.chunks) == set()
    assert named_documents("according to the article", store.sparse, store.chunks) == set()


def test_scope_ranks_the_named_documents_passages_first_and_keeps_the_rest(
    seed_pipeline, dev_questions
):
    scoped = seed_pipeline.with_settings(attribution="scope", top_k=8)
    store = seed_pipeline.store
    (jazeera,) = {d for d, doc in store.documents.items() if "Al Jazeera" in doc.text}
    q = next(q for q in dev_questions if q["doc"] != jazeera and q["answerable"])
    asked = f"{q['question'].rstrip('?')}, according to the Al Jazeera report?"
    assert scoped._plan(asked).search == q["question"]  # searched without the name
    docs = [p.doc_id for p in scoped.search(asked)]
    inside = [d == jazeera for d in docs]
    assert inside[0] and inside == sorted(inside, reverse=True)  # its passages first


def test_a_scope_is_a_preference_not_a_filter(seed_pipeline, dev_questions):
    retriever, chunks = seed_pipeline.retriever, seed_pipeline.store.chunks
    question, k = dev_questions[0]["question"], 5
    deep = retriever.search(question, k * SCOPE_DEPTH)
    counts = Counter(chunks[h.chunk_id].doc_id for h in deep)
    rare = min(counts, key=counts.get)  # the document least found: others fill the rest
    (scoped,) = retriever.search_many([question], [k], ["hybrid"], [{rare}])
    inside = [h for h in deep if chunks[h.chunk_id].doc_id == rare]
    assert scoped == (inside + [h for h in deep if h not in inside])[:k]
    assert len(inside) < k and chunks[scoped[-1].chunk_id].doc_id != rare
