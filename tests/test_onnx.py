"""The reader on ONNX Runtime: the same spans as torch, loaded offline without torch."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest
from offline_reader import read_offline

from rag.config import PROJECT_ROOT
from rag.readers.onnx_backend import export_onnx, float_in_int8, onnx_path
from rag.readers.span import SpanReader

MODEL = PROJECT_ROOT / "models" / "reader"
needs_export = pytest.mark.skipif(
    not onnx_path(MODEL, "int8").is_file(), reason="run `verbatim export-onnx` (make install does)"
)


@pytest.fixture(scope="module")
def dev_readings(seed_pipeline, dev_questions) -> list[tuple[str, list]]:
    """Each dev question with the passages the pipeline reads for it."""
    return [(q["question"], seed_pipeline.search(q["question"])) for q in dev_questions]


def _best(reader: SpanReader, question: str, passages: list) -> tuple[str, float]:
    reading = reader.read(question, passages)
    return (reading.spans[0].text, reading.score) if reading.spans else ("", 0.0)


@needs_export
def test_onnx_fp32_reads_what_torch_fp32_reads(dev_readings) -> None:
    torch_reader = SpanReader(str(MODEL), precision="fp32")
    onnx_reader = SpanReader(str(MODEL), precision="fp32", backend="onnx")
    for question, passages in dev_readings:
        expected, got = (
            _best(torch_reader, question, passages),
            _best(onnx_reader, question, passages),
        )
        assert got[0] == expected[0], question
        assert got[1] == pytest.approx(expected[1], abs=1e-3), question


@needs_export
def test_onnx_int8_mostly_agrees_with_fp32(dev_readings) -> None:
    exact = SpanReader(str(MODEL), precision="fp32", backend="onnx")
    int8 = SpanReader(str(MODEL), precision="int8", backend="onnx")
    same = [_best(exact, q, p)[0] == _best(int8, q, p)[0] for q, p in dev_readings]
    assert sum(same) >= 0.9 * len(same), f"{sum(same)} of {len(same)} agree"


@needs_export
def test_int8_reads_a_question_the_same_beside_others(dev_readings) -> None:
    """Dynamic int8 scales activations per batch: a question's windows get batches of their own,
    so its answer and score do not depend on who else is asking."""
    reader = SpanReader(str(MODEL), precision="int8", backend="onnx")
    items = [(q, p, 0) for q, p in dev_readings[:12]]
    together = reader.read_many(items)
    alone = [reader.read(q, p) for q, p, _ in items]
    for got, expected in zip(together, alone, strict=True):
        assert [(s.text, s.start) for s in got.spans] == [(s.text, s.start) for s in expected.spans]
        assert [s.score for s in got.spans] == [s.score for s in expected.spans]
        assert got.abstain == expected.abstain


@needs_export
def test_auto_reads_on_onnx_int8_where_the_export_is(tmp_path: Path) -> None:
    reader = SpanReader(str(MODEL))
    assert (reader.backend, reader.precision) == ("onnx", "int8")
    assert SpanReader(str(tmp_path)).backend == "torch"  # nothing exported there


def test_int8_keeps_the_outlier_feed_forwards_and_the_span_head_float() -> None:
    keep = float_in_int8(6)
    assert keep("/qa_outputs/MatMul")
    assert keep("/bert/encoder/layer.3/output/dense/MatMul")
    assert keep("/bert/encoder/layer.0/intermediate/dense/MatMul")
    assert not keep("/bert/encoder/layer.4/output/dense/MatMul")
    assert not keep("/bert/encoder/layer.0/attention/output/dense/MatMul")
    assert not keep("Attention_2")


def test_bf16_is_refused_on_onnx() -> None:
    with pytest.raises(ValueError, match="fp32 or int8"):
        SpanReader(str(MODEL), precision="bf16", backend="onnx")


def test_a_missing_export_says_how_to_make_it(tmp_path: Path) -> None:
    reader = SpanReader(str(tmp_path), backend="onnx")
    with pytest.raises(FileNotFoundError, match="verbatim export-onnx"):
        reader.warm_up()


def test_export_writes_files_that_load_offline_without_torch(tmp_path: Path) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(MODEL / name, folder / name)
    written = export_onnx(folder)
    assert [p.name for p in written] == ["model.onnx", "model.int8.onnx"]
    fused = {n.op_type for p in written for n in onnx.load(str(p)).graph.node}
    assert {"Attention", "QAttention", "LayerNormalization"} <= fused
    assert "SkipLayerNormalization" not in fused  # its CPU kernel is slower than its parts
    result = read_offline(folder, "onnx", tmp_path)
    assert result["text"] == "1874" and not result["torch"] and not result["transformers"]


@needs_export
def test_no_session_pool_spins_while_idle() -> None:
    from embeddings.onnx_session import cpu_session

    session = cpu_session(onnx_path(MODEL, "int8"), threads=2)
    entry = session.get_session_options().get_session_config_entry
    assert entry("session.intra_op.allow_spinning") == "0"
