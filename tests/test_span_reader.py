"""The span reader over the shipped model: verbatim spans, document offsets, abstention."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from offline_reader import read_offline

from rag.answer import Passage
from rag.config import PROJECT_ROOT, SEED_CORPUS, Settings
from rag.readers.answer_types import answer_type_fit
from rag.readers.calibration import FEATURES, Calibration
from rag.readers.precision import cpu_has_bf16
from rag.readers.span import SpanReader
from rag.readers.trimming import trim_span
from rag.readers.windows import collate
from rag.readers.words import content_words, overlap
from rag.sentences import sentence_around

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _model_dir() -> Path | None:
    """``$VERBATIM_READER_MODEL`` if set, else models/reader, else models/reader-wip."""
    explicit = os.environ.get("VERBATIM_READER_MODEL")
    names = (
        [Path(explicit)]
        if explicit
        else [PROJECT_ROOT / "models" / n for n in ("reader", "reader-wip")]
    )
    for path in names:
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return path
    return None


MODEL = _model_dir()
needs_model = pytest.mark.skipif(
    MODEL is None, reason="no trained reader in models/reader or models/reader-wip (train it first)"
)

ANNIVERSARY_Q = (
    "Which anniversary of their diplomatic relations were China and Russia marking at the time "
    "of Lavrov's visit to China?"
)


def _doc(name: str) -> str:
    return (SEED_CORPUS / name).read_text(encoding="utf-8")


def _passage(doc_id: str, text: str, needle: str, before: int = 200, after: int = 300) -> Passage:
    """A passage of the document around ``needle`` (offsets in the document, not 0)."""
    at = text.index(needle)
    start, end = max(0, at - before), min(len(text), at + after)
    return Passage(
        doc_id=doc_id, title=doc_id, start=start, end=end, text=text[start:end], score=0.1
    )


def _chunk(doc_id: str, text: str, start: int, size: int = 500) -> Passage:
    end = min(len(text), start + size)
    return Passage(
        doc_id=doc_id, title=doc_id, start=start, end=end, text=text[start:end], score=0.1
    )


@pytest.fixture(scope="module")
def reader() -> SpanReader:
    assert MODEL is not None
    r = SpanReader.from_settings(Settings(reader_model=str(MODEL)))  # the project's defaults
    r.warm_up()
    return r


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in SEED_CORPUS.glob("*.txt")}


# -- without a model -------------------------------------------------------------------------
def test_trim_keeps_a_verbatim_slice() -> None:
    text = ' He said: "the 75th anniversary," and left. U.S. '
    for a in range(len(text)):
        for b in range(a, len(text) + 1):
            s, e = trim_span(text, a, b)
            assert a <= s <= e <= b
    s, e = trim_span(text, text.index('"'), text.index(" and"))
    assert text[s:e] == "the 75th anniversary"
    s, e = trim_span(text, text.index("U.S."), len(text))
    assert text[s:e] == "U.S."
    s, e = trim_span(text, text.index("and left."), text.index(" U.S."))
    assert text[s:e] == "and left"


def test_answer_type_fit() -> None:
    assert answer_type_fit("How many people came?", "about 3,000") == 1
    assert answer_type_fit("In what year was it built?", "the harbour") == -1
    assert answer_type_fit("Who designed it?", "Mara Quill") == 1
    assert answer_type_fit("Who designed it?", "an engineer") == -1
    assert answer_type_fit("What does the lamp burn?", "whale oil") == 0
    assert answer_type_fit("On what day did they meet?", "April 9") == 1


def test_fallback_calibration_is_a_sigmoid_of_the_margin(tmp_path: Path) -> None:
    cal = Calibration.load(tmp_path)  # no calibration.json
    assert cal.source == "fallback"
    assert cal.score((0.0, 5.0, 1.0, 1.0, -2.0, 0.5, 1.0)) == pytest.approx(0.5)
    rest = (0.0,) * (len(FEATURES) - 1)
    assert 0.0 < cal.score((-30.0, *rest)) < cal.score((3.0, *rest)) < 1.0


def test_calibration_saves_what_it_loads(tmp_path: Path) -> None:
    cal = Calibration(tuple(float(i) for i in range(len(FEATURES))), -1.5, 0.3)
    cal.save(tmp_path, {"fitted_on": {"questions": 3}})
    again = Calibration.load(tmp_path)
    assert (again.weights, again.bias, again.threshold) == (cal.weights, cal.bias, cal.threshold)
    assert again.source == str(tmp_path / "calibration.json")


def test_calibration_with_other_features_falls_back(tmp_path: Path) -> None:
    stale = {"features": ["margin_window"], "weights": [2.0], "bias": 1.0}
    (tmp_path / "calibration.json").write_text(json.dumps(stale))
    assert Calibration.load(tmp_path).source == "fallback"


def test_overlap_counts_question_content_words_in_the_sentence() -> None:
    assert content_words("Who is Russia's ambassador to China?") == {
        "russia",
        "ambassador",
        "china",
    }
    question = "Who is Russia's ambassador to China?"
    assert overlap(question, "Xi met Putin in Moscow.") == 0.0
    assert overlap(question, "Russia's ambassadors to China, he said.", stem=5) == 1.0
    assert overlap(question, "Russia's ambassadors to China, he said.") == pytest.approx(2 / 3)
    assert overlap("Who is it?", "anything") == 1.0  # no content words: no evidence either way


def test_sentence_around_widens_a_span_to_its_sentences() -> None:
    sentences = [(0, 10), (11, 30), (31, 50)]
    assert sentence_around(sentences, 12, 15) == (11, 30)
    assert sentence_around(sentences, 5, 20) == (0, 30)  # across two sentences
    assert sentence_around([], 5, 20) == (5, 20)


def test_constructor_is_cheap() -> None:
    r = SpanReader("/nonexistent/model")
    assert r.engine is None


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="fp16"):
        SpanReader("/nonexistent/model", precision="fp16")


def test_auto_precision_follows_the_cpu() -> None:
    expected = "bf16" if cpu_has_bf16() else "fp32"
    assert SpanReader("/nonexistent/model").precision == expected
    assert SpanReader("/nonexistent/model", precision="fp32").precision == "fp32"


# -- with the shipped model ------------------------------------------------------------------
@needs_model
def test_finds_the_known_answer_with_document_offsets(reader, documents) -> None:
    name = "003_40868c46990d1f75.txt"
    text = documents[name]
    passage = _passage(name, text, "75th anniversary")
    reading = reader.read(ANNIVERSARY_Q, [passage])
    assert not reading.abstain
    best = reading.spans[0]
    assert "75th" in best.text
    assert text[best.start : best.end] == best.text
    assert passage.start <= best.start < best.end <= passage.end
    assert 0.0 <= reading.score <= 1.0 and reading.score == best.score


@needs_model
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_faster_precisions_find_the_same_answer(precision: str, documents) -> None:
    name = "003_40868c46990d1f75.txt"
    passage = _passage(name, documents[name], "75th anniversary")
    exact = SpanReader(str(MODEL), precision="fp32")
    fast = SpanReader(str(MODEL), precision=precision)
    expected, got = exact.read(ANNIVERSARY_Q, [passage]), fast.read(ANNIVERSARY_Q, [passage])
    assert got.spans[0].text == expected.spans[0].text
    assert got.score == pytest.approx(expected.score, abs=0.1)


@needs_model
def test_bf16_casts_the_encoder_once_and_keeps_the_span_head_float32() -> None:
    import torch

    reader = SpanReader(str(MODEL), precision="bf16")
    reader.warm_up()
    model = reader.engine.backend.model
    assert {p.dtype for p in model.bert.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.qa_outputs.parameters()} == {torch.float32}
    windows = reader.engine.windows(
        [ANNIVERSARY_Q], ["China and Russia marked the 75th anniversary."]
    )
    start, end = reader.engine.backend.forward(collate(windows))
    assert start.dtype == end.dtype == np.float32


@needs_model
def test_several_passages_in_shared_forward_passes(documents) -> None:
    # All at once: with the first read, passages 0 and 1 hold a confident wrong date.
    reader = SpanReader.from_settings(Settings(reader_model=str(MODEL), reader_first_passages=0))
    reader.warm_up()
    answer_doc = "003_40868c46990d1f75.txt"
    passages = [
        _chunk("000_921856a62ede8ee5.txt", documents["000_921856a62ede8ee5.txt"], 0),
        _chunk("001_0de572d7f595036a.txt", documents["001_0de572d7f595036a.txt"], 1000),
        _chunk("002_f41d54b1f0163c00.txt", documents["002_f41d54b1f0163c00.txt"], 2000),
        _passage(answer_doc, documents[answer_doc], "75th anniversary"),
        _chunk("000_921856a62ede8ee5.txt", documents["000_921856a62ede8ee5.txt"], 2000),
    ]
    calls = []
    backend = reader.engine.backend
    forward = backend.forward
    backend.forward = lambda batch: calls.append(len(batch["input_ids"])) or forward(batch)
    try:
        reading = reader.read(ANNIVERSARY_Q, passages)
    finally:
        del backend.forward
    # Five passages of about 500 characters: each read once, in batches of like lengths.
    assert sum(calls) == len(reader.engine.windows([ANNIVERSARY_Q] * 5, [p.text for p in passages]))
    assert len(calls) < len(passages)
    assert not reading.abstain
    assert reading.spans[0].passage_index == 3 and "75th" in reading.spans[0].text
    for span in reading.spans:
        p = passages[span.passage_index]
        assert documents[p.doc_id][span.start : span.end] == span.text
        assert p.start <= span.start < span.end <= p.end
    scores = [s.score for s in reading.spans]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


@needs_model
def test_long_passage_is_read_in_overlapping_windows(reader, documents) -> None:
    name = "004_600d39537292fdeb.txt"
    text = documents[name]
    whole = Passage(doc_id=name, title=name, start=0, end=len(text), text=text, score=0.1)
    windows = reader.forward("When did Xi Jinping meet Lavrov?", [whole.text])
    assert len(windows) > 1  # more than one window for a 30 kB document
    reading = reader.read("When did Xi Jinping meet Lavrov?", [whole])
    for span in reading.spans:
        assert text[span.start : span.end] == span.text


@needs_model
def test_alternatives_do_not_overlap(reader, documents) -> None:
    name = "004_600d39537292fdeb.txt"
    text = documents[name]
    # Overlapping passages of one document: the same answer is seen twice.
    at = text.index("75th anniversary")
    passages = [_chunk(name, text, max(0, at - s), 600) for s in (100, 300, 450)]
    reading = reader.read(ANNIVERSARY_Q, passages)
    spans = reading.spans
    assert len(spans) >= 2
    for i, a in enumerate(spans):
        for b in spans[i + 1 :]:
            same_doc = passages[a.passage_index].doc_id == passages[b.passage_index].doc_id
            assert not (same_doc and a.start < b.end and b.start < a.end), (a, b)


@needs_model
def test_answers_a_question_that_names_the_passage_s_entity_otherwise(reader, documents) -> None:
    # The question says "Beijing", the text "China": a reader trained on entity-swap negatives
    # (stages 1-5) gave this passage a no-answer lead of 14 logits and refused.
    name = "004_600d39537292fdeb.txt"
    passage = _passage(name, documents[name], "put forward in 2023")
    question = (
        "In what year did Beijing put forward its well-known '12 points' on the Ukraine conflict?"
    )
    reading = reader.read(question, [passage])
    assert reading.spans[0].text == "2023"
    assert not reading.abstain


@needs_model
def test_abstains_when_the_passage_lacks_the_answer(reader, documents) -> None:
    name = "003_40868c46990d1f75.txt"
    passage = _passage(name, documents[name], "75th anniversary")
    reading = reader.read("What is the boiling point of mercury in degrees Celsius?", [passage])
    assert reading.abstain
    assert reading.score < reader.threshold


@needs_model
def test_no_passages_abstains(reader) -> None:
    reading = reader.read(ANNIVERSARY_Q, [])
    assert reading.abstain and reading.spans == [] and reading.score == 0.0


@needs_model
def test_the_shipped_model_loads_offline(tmp_path: Path) -> None:
    result = read_offline(MODEL, "torch", tmp_path)
    assert "1874" in result["text"]


@needs_model
def test_the_pipeline_answers_with_the_span_reader(seed_settings, encoder, dev_questions) -> None:
    from rag.pipeline import AskPipeline

    settings = seed_settings.model_copy(update={"reader": "span", "reader_model": str(MODEL)})
    pipe = AskPipeline(settings, encoder=encoder)
    pipe.warm_up()
    assert isinstance(pipe.reader, SpanReader)
    q = next(q for q in dev_questions if q["id"] == "dev-002")
    answer = pipe.ask(q["question"])
    assert not answer.abstained and "75th" in answer.answer
    c = answer.citations[0]
    assert c.doc_id in {q["doc"], *q["also_in"]}
    assert pipe.document(c.doc_id).text[c.start : c.end] == answer.answer
    for q in dev_questions[:8]:  # the pipeline asserts every cited span is verbatim
        pipe.ask(q["question"])


@needs_model
def test_an_empty_passage_changes_nothing(reader) -> None:
    text = "The lighthouse at Kestrel Point was built in 1874 by the engineer Mara Quill."
    real = Passage(doc_id="b", title="b", start=40, end=40 + len(text), text=text, score=0.1)
    empty = Passage(doc_id="a", title="a", start=0, end=0, text="", score=0.2)
    alone = reader.read("When was the lighthouse built?", [real])
    both = reader.read("When was the lighthouse built?", [empty, real])
    assert both.spans[0].passage_index == 1
    assert (both.spans[0].start, both.spans[0].end) == (alone.spans[0].start, alone.spans[0].end)
    assert both.score == pytest.approx(alone.score, abs=1e-4)
