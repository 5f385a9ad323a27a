"""The span reader's first read: a question's first passages alone, the rest only when unsure."""

from __future__ import annotations

import pytest
from test_span_reader import ANNIVERSARY_Q, MODEL, _chunk, _passage, needs_model

from rag.answer import Passage
from rag.config import SEED_CORPUS, Settings
from rag.readers.span import SpanReader

pytestmark = needs_model
ANSWER_DOC = "003_40868c46990d1f75.txt"


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in SEED_CORPUS.glob("*.txt")}


def _others(documents: dict[str, str]) -> list[Passage]:
    """Four passages of other articles, none of which says which anniversary it was."""
    return [
        _chunk(name, documents[name], start)
        for name, start in [
            ("000_921856a62ede8ee5.txt", 0),
            ("001_0de572d7f595036a.txt", 1000),
            ("002_f41d54b1f0163c00.txt", 2000),
            ("000_921856a62ede8ee5.txt", 2000),
        ]
    ]


def _reader(**config) -> SpanReader:
    """An fp32 reader (no int8 scales to differ between batches); by default it reads all."""
    config = {"reader_first_passages": 0, **config}
    settings = Settings(reader_model=str(MODEL), reader_precision="fp32", **config)
    reader = SpanReader.from_settings(settings)
    reader.warm_up()
    return reader


def _counting(reader: SpanReader) -> list[int]:
    """The windows of each forward pass ``reader`` makes from now on."""
    calls: list[int] = []
    backend = reader.engine.backend
    forward = backend.forward
    backend.forward = lambda batch: calls.append(len(batch["input_ids"])) or forward(batch)
    return calls


def _same(got, expected) -> None:
    assert got.abstain == expected.abstain
    assert [(s.passage_index, s.start, s.end, s.text) for s in got.spans] == [
        (s.passage_index, s.start, s.end, s.text) for s in expected.spans
    ]
    assert [s.score for s in got.spans] == pytest.approx(
        [s.score for s in expected.spans], abs=1e-4
    )


def test_a_sure_first_read_reads_no_further(documents) -> None:
    passages = [
        _passage(ANSWER_DOC, documents[ANSWER_DOC], "75th anniversary"),
        *_others(documents),
    ]
    cascade = _reader(reader_first_passages=2, reader_first_accept=0.5)
    calls = _counting(cascade)
    got = cascade.read(ANNIVERSARY_Q, passages)
    assert not got.abstain and got.score >= 0.5 and "75th" in got.spans[0].text
    read_first = cascade.engine.windows([ANNIVERSARY_Q] * 2, [p.text for p in passages[:2]])
    assert sum(calls) == len(read_first)  # the other three passages were never run
    _same(got, _reader().read(ANNIVERSARY_Q, passages[:2]))


def test_an_unsure_first_read_reads_on_and_decodes_all_windows_at_once(documents) -> None:
    passages = _others(documents)
    passages.insert(3, _passage(ANSWER_DOC, documents[ANSWER_DOC], "75th anniversary"))
    whole = _reader()
    # The first two passages alone hold a confident wrong answer: only a higher bar reads on.
    unsure = whole.read(ANNIVERSARY_Q, passages[:2]).score
    cascade = _reader(reader_first_passages=2, reader_first_accept=min(1.0, unsure + 0.01))
    calls = _counting(cascade)
    got = cascade.read(ANNIVERSARY_Q, passages)
    every = cascade.engine.windows([ANNIVERSARY_Q] * 5, [p.text for p in passages])
    assert sum(calls) == len(every)  # the first two passages, then the other three: each once
    assert got.spans[0].passage_index == 3 and "75th" in got.spans[0].text
    _same(got, whole.read(ANNIVERSARY_Q, passages))


def test_questions_read_together_each_go_on_only_when_unsure(documents) -> None:
    sure = [_passage(ANSWER_DOC, documents[ANSWER_DOC], "75th anniversary"), *_others(documents)]
    unsure = [*_others(documents), sure[0]]
    whole = _reader()
    high, low = (whole.read(ANNIVERSARY_Q, p[:1]).score for p in (sure, unsure))
    assert high > low
    cascade = _reader(reader_first_passages=1, reader_first_accept=(high + low) / 2)
    got = cascade.read_many([(ANNIVERSARY_Q, sure, 0), (ANNIVERSARY_Q, unsure, 0), ("Who?", [], 0)])
    _same(got[0], whole.read(ANNIVERSARY_Q, sure[:1]))
    _same(got[1], whole.read(ANNIVERSARY_Q, unsure))
    assert got[2].abstain and not got[2].spans


def test_the_first_read_is_configured_by_settings() -> None:
    reader = SpanReader.from_settings(Settings(reader_first_passages=3, reader_first_accept=0.7))
    assert (reader.first_passages, reader.first_accept) == (3, 0.7)
    off = SpanReader.from_settings(Settings(reader_first_passages=0))
    assert off.first_passages == 0
