"""Lexical evidence: the share of a question's words and word pairs a passage holds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.lexical import lexical_evidence


def test_a_passage_holding_the_whole_question_scores_two_and_one_without_it_zero() -> None:
    question = "Where did the Treaty of Westphalia end the war?"
    text = "The book asks: where did the Treaty of Westphalia end the war?"
    assert lexical_evidence(question, text) == 2.0
    assert lexical_evidence(question, "Bread rises when yeast ferments sugar.") == 0.0


def test_words_count_apart_from_their_order() -> None:
    question = "treaty westphalia"
    # both words, not the pair: half of the evidence a passage with the phrase gets
    assert lexical_evidence(question, "Westphalia signed a treaty.") == pytest.approx(1.0)
    assert lexical_evidence(question, "The treaty westphalia ended it.") == pytest.approx(2.0)


def test_stop_words_alone_are_not_evidence() -> None:
    assert lexical_evidence("what is the war", "what is the peace") == pytest.approx(0.0)
    assert lexical_evidence("what is the war", "the war") == pytest.approx(2.0)


@given(st.text(max_size=80), st.text(max_size=200))
def test_evidence_lies_between_zero_and_two(question: str, text: str) -> None:
    assert 0.0 <= lexical_evidence(question, text) <= 2.0
