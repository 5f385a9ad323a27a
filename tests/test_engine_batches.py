"""The span engine's batches: by length, never padding a window far past its own length."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_span_reader import MODEL, needs_model

from rag.config import SEED_CORPUS
from rag.readers.engine import SpanEngine
from rag.readers.span import SpanReader
from rag.readers.windows import Window


def _window(length: int) -> Window:
    ids = np.zeros(length, dtype=np.int32)
    return Window(0, ids, ids.astype(np.int8), [None] * length)


@given(
    st.lists(st.integers(1, 384), max_size=60),
    st.integers(1, 20),
    st.one_of(st.none(), st.integers(0, 64)),
)
def test_batches_cut_the_sorted_windows_greedily(lengths, batch_size, slack) -> None:
    windows = [_window(n) for n in lengths]
    order = sorted(range(len(windows)), key=lambda w: lengths[w])
    float_backend = SimpleNamespace(scales_per_batch=False)  # only its batching contract
    engine = SpanEngine(None, float_backend, batch_size=batch_size, pad_slack=slack)  # type: ignore[arg-type]
    batches = engine._batches(order, windows)
    assert [w for b in batches for w in b] == order
    for b, after in zip(batches, [*batches[1:], None], strict=False):
        assert 1 <= len(b) <= batch_size
        spread = lengths[b[-1]] - lengths[b[0]]
        assert slack is None or spread <= slack
        if after is not None:  # a batch ends only when full or when the next is too long
            assert len(b) == batch_size or (
                slack is not None and lengths[after[0]] - lengths[b[0]] > slack
            )


def test_a_backend_that_scales_per_batch_reads_a_caller_s_windows_padded_together() -> None:
    lengths = [40, 41, 120, 300, 384, 384]
    windows = [_window(n) for n in lengths]
    int8 = SimpleNamespace(scales_per_batch=True)
    engine = SpanEngine(None, int8, batch_size=4, pad_slack=8)  # type: ignore[arg-type]
    assert engine._batches(list(range(6)), windows) == [[0, 1, 2, 3], [4, 5]]


@needs_model
def test_cutting_batches_by_length_changes_no_span() -> None:
    texts = [
        p.read_text(encoding="utf-8")[:n]
        for p, n in zip(
            sorted(SEED_CORPUS.glob("*.txt")), (300, 900, 1500, 2400, 5000), strict=False
        )
    ]
    question = "Which anniversary were China and Russia marking?"
    reader = SpanReader(str(MODEL), precision="fp32")
    reader.warm_up()
    engine = reader.engine
    padded = SpanEngine(engine.tokenizer, engine.backend, pad_slack=None).read(
        [question] * len(texts), texts, 5
    )
    cut = engine.read([question] * len(texts), texts, 5)
    assert len({len(w.input_ids) for w in engine.windows([question] * len(texts), texts)}) > 2
    assert [(w.pair, [s[1:] for s in w.spans]) for w in cut] == [
        (w.pair, [s[1:] for s in w.spans]) for w in padded
    ]
    for a, b in zip(cut, padded, strict=True):
        assert a.null == pytest.approx(b.null, abs=1e-3)
        assert [s[0] for s in a.spans] == pytest.approx([s[0] for s in b.spans], abs=1e-3)
