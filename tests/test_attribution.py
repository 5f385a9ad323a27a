"""Questions that name their document ("according to the Al Jazeera report, ..."): the phrase
is found only when its head is a kind of document, the rest is what the reader reads, and the
real pipeline answers such a question as it answers the plain one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.attribution import split_attribution
from rag.readers.words import content_words


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
    assert seed_pipeline.settings.attribution == "drop"  # the default
    dropping = seed_pipeline
    q = next(q for q in dev_questions if q["id"] == "dev-002")  # the 75th anniversary
    plain = dropping.ask(q["question"])
    named = dropping.ask(
        f"According to the Al Jazeera report, {q['question'][0].lower()}{q['question'][1:]}"
    )
    assert not named.abstained and named.answer == plain.answer and "75th" in named.answer
    assert named.citations == plain.citations
    assert named.question.startswith("According to the Al Jazeera report")  # as asked
    reads = seed_pipeline.with_settings(attribution="read")._reading_question(named.question)
    assert reads == named.question and dropping._reading_question(named.question) == plain.question
