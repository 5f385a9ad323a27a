"""The ask pipeline: verbatim answers with exact citations, abstention, input validation."""

from __future__ import annotations

import pytest

from rag.pipeline import AskPipeline, QuestionError
from rag.readers.sentence import SentenceReader


def _check_citation(pipe: AskPipeline, answer) -> None:
    c = answer.citations[0]
    text = pipe.document(c.doc_id).text
    assert text[c.start : c.end] == answer.answer == c.text
    assert text[c.passage_start : c.passage_end] == c.passage
    assert text[c.sentence_start : c.sentence_end] == c.sentence
    assert c.sentence_start <= c.start < c.end <= c.sentence_end
    assert c.title == pipe.document(c.doc_id).title


def test_answer_is_verbatim_with_exact_citation(seed_pipeline, dev_questions):
    q = next(q for q in dev_questions if q["id"] == "dev-002")
    answer = seed_pipeline.ask(q["question"])
    assert not answer.abstained
    assert "75th" in answer.answer
    assert answer.citations[0].doc_id in {q["doc"], *q["also_in"]}
    _check_citation(seed_pipeline, answer)
    assert 0.0 <= answer.score <= 1.0
    assert answer.timings_ms.total >= answer.timings_ms.retrieve > 0
    assert 1 <= len(answer.passages) <= seed_pipeline.settings.top_k  # touching chunks merge


def test_every_answered_dev_question_cites_verbatim(seed_pipeline, dev_questions):
    for q in dev_questions:
        answer = seed_pipeline.ask(q["question"])
        if not answer.abstained:
            _check_citation(seed_pipeline, answer)


def test_sentence_reader_abstains_on_an_unrelated_question(seed_pipeline):
    reader = SentenceReader(seed_pipeline.encoder)
    passages = seed_pipeline.search("What is the boiling point of liquid nitrogen in kelvin?")
    reading = reader.read("What is the boiling point of liquid nitrogen in kelvin?", passages)
    assert reading.abstain
    assert not reader.read("Who did Lavrov meet in Beijing?", passages[:0]).spans


def test_answer_json_matches_the_contract(seed_pipeline):
    data = seed_pipeline.ask("Who went to Beijing in 1989?").model_dump()
    assert set(data) >= {
        "question",
        "answer",
        "abstained",
        "score",
        "citations",
        "passages",
        "timings_ms",
    }
    assert set(data["timings_ms"]) == {"retrieve", "read", "total"}
    assert set(data["passages"][0]) == {"doc_id", "title", "start", "end", "text", "score"}
    if data["citations"]:
        assert set(data["citations"][0]) >= {
            "doc_id",
            "title",
            "start",
            "end",
            "passage",
            "passage_start",
            "passage_end",
            "score",
        }


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(seed_pipeline, question):
    with pytest.raises(QuestionError, match="empty"):
        seed_pipeline.ask(question)


def test_overlong_question_is_refused(seed_pipeline):
    limit = seed_pipeline.settings.max_question_chars
    with pytest.raises(QuestionError, match=f"limit is {limit}"):
        seed_pipeline.ask("why " * limit)
