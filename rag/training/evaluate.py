"""``eval-reader``: SQuAD 2.0 metrics of a reader folder on the held-out half of SQuAD v2.0 dev.

A prediction is the best span by raw ``start + end`` logit over all windows of the question
(:class:`rag.readers.engine.SpanEngine`, the service's decoder); the null score is the smallest
``start + end`` logit of [CLS] over the windows. With ``diff = null - best span`` the reader
abstains when ``diff > threshold``; the figures "at threshold 0" use threshold 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.readers.engine import SpanEngine, WindowSpans
from rag.readers.model import load_reader_model
from rag.readers.windows import WindowSpec, WindowTokenizer
from rag.training.squad import QAExample, heldout_examples, squad2_metrics


@dataclass(frozen=True)
class BestSpan:
    """A question's best non-null span over its windows, and the smallest null score."""

    score: float  # raw start + end logit
    start: int  # character offsets in the example's context
    end: int
    null: float


def best_spans(windows: Sequence[WindowSpans]) -> dict[int, BestSpan]:
    """Example index -> :class:`BestSpan` (absent when no context token fits a window)."""
    best: dict[int, tuple[float, int, int]] = {}
    null: dict[int, float] = {}
    for w in windows:
        null[w.pair] = min(null.get(w.pair, float("inf")), w.null)
        if w.spans and (w.pair not in best or w.spans[0][0] > best[w.pair][0]):
            best[w.pair] = w.spans[0]
    return {ex: BestSpan(s, a, b, null[ex]) for ex, (s, a, b) in best.items()}


def predictions(
    examples: Sequence[QAExample], best: dict[int, BestSpan]
) -> tuple[dict[str, str], dict[str, float]]:
    """Best non-null span text and ``null - best span`` per question id."""
    span_preds: dict[str, str] = {}
    diffs: dict[str, float] = {}
    for i, ex in enumerate(examples):
        if i in best:
            span_preds[ex.qid] = ex.context[best[i].start : best[i].end]
            diffs[ex.qid] = best[i].null - best[i].score
        else:  # no context token fits (cannot happen with sane lengths): abstain
            span_preds[ex.qid], diffs[ex.qid] = "", float("inf")
    return span_preds, diffs


def evaluate_reader(
    model_dir: str | Path,
    data_dir: Path,
    limit: int = 0,
    spec: WindowSpec | None = None,
    max_answer_tokens: int = 30,
    batch_size: int = 64,
    device: str = "auto",
    threads: int = 2,
    precision: str = "fp32",
    backend: str = "torch",
    predictions_out: str = "",
) -> dict:
    """Held-out SQuAD2 metrics of the reader in ``model_dir`` (first ``limit`` questions)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    spec = spec or WindowSpec()
    t0 = time.time()
    examples = heldout_examples(data_dir)[: limit or None]
    runner = load_reader_model(model_dir, precision, threads, device, backend)
    tokenizer = WindowTokenizer.from_folder(model_dir, spec)
    engine = SpanEngine(tokenizer, runner, max_answer_tokens, batch_size)
    questions, contexts = [e.question for e in examples], [e.context for e in examples]
    windows = engine.read(questions, contexts, 1, groups=range(len(examples)))
    span_preds, diffs = predictions(examples, best_spans(windows))
    gold = {e.qid: list(e.answers) for e in examples}
    metrics = squad2_metrics(gold, span_preds, diffs, threshold=0.0)
    metrics |= {
        "model": str(model_dir),
        "split": "SQuAD v2.0 dev, held-out half (odd positions of sorted titles)",
        "limit": limit or None,
        "max_length": spec.max_length,
        "stride": spec.stride,
        "max_answer_tokens": max_answer_tokens,
        "precision": precision,
        "backend": backend,
        "seconds": round(time.time() - t0, 1),
    }
    if predictions_out:
        rows = {q: {"span": span_preds[q], "null_minus_span": diffs[q]} for q in gold}
        Path(predictions_out).write_text(json.dumps(rows, indent=1))
    return metrics
