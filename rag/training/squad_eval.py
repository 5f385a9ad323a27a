"""SQuAD 2.0-style evaluation of a span reader on the held-out half of SQuAD v2.0 dev.

Metrics follow the official SQuAD 2.0 evaluation script (answer normalisation, EM, F1, HasAns and
NoAns breakdowns, best threshold search). A prediction is the best span by raw
``start_logit + end_logit`` over all windows of the question (both ends in the context, end not
before start, at most ``max_answer_tokens`` tokens); the null score is ``start + end`` logit of
[CLS], the smallest over the windows. With ``diff = null_score - best_span_score`` the reader
abstains when ``diff > threshold``; the figures "at threshold 0" use threshold 0.
"""

from __future__ import annotations

import collections
import json
import re
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- official metrics


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official SQuAD)."""

    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return " ".join(remove_articles(remove_punc(s.lower())).split())


def get_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise.
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    if not golds:
        return float(not normalize_answer(prediction or ""))
    return float(max(compute_exact(g, prediction or "") for g in golds))


def token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """SQuAD token F1, the maximum over the gold answers."""
    if not golds:
        return float(not normalize_answer(prediction or ""))
    return max(compute_f1(g, prediction or "") for g in golds)


def _scores(gold: Mapping[str, Sequence[str]], preds: Mapping[str, str]):
    exact, f1 = {}, {}
    for qid, answers in gold.items():
        golds = [a for a in answers if normalize_answer(a)] or [""]
        pred = preds.get(qid, "")
        exact[qid] = max(compute_exact(a, pred) for a in golds)
        f1[qid] = max(compute_f1(a, pred) for a in golds)
    return exact, f1


def _find_best_thresh(
    span_preds: Mapping[str, str],
    scores: Mapping[str, float],
    diffs: Mapping[str, float],
    has_ans: Mapping[str, bool],
) -> tuple[float, float]:
    """Official search: start from all-null and answer questions in increasing ``diff``.

    ``scores`` are the per-question scores of the *non-null* prediction. Returns
    (best score in %, threshold); the rule is "abstain when diff > threshold".
    """
    cur = sum(1 for q in has_ans if not has_ans[q])
    best = cur
    order = sorted(diffs, key=lambda q: diffs[q])
    best_thresh = diffs[order[0]] - 1.0 if order else 0.0
    for qid in order:
        if has_ans[qid]:
            cur += scores[qid]
        else:
            cur += -1 if span_preds[qid] else 0
        if cur > best:
            best = cur
            best_thresh = diffs[qid]
    return 100.0 * best / max(1, len(scores)), best_thresh


def squad2_metrics(
    gold: Mapping[str, Sequence[str]],
    span_preds: Mapping[str, str],
    diffs: Mapping[str, float],
    threshold: float = 0.0,
) -> dict:
    """SQuAD 2.0 metrics (in %).

    ``gold``: qid -> reference answers (empty for unanswerable); ``span_preds``: qid -> best
    non-null span text; ``diffs``: qid -> null score minus best span score.
    """
    has_ans = {q: any(normalize_answer(a) for a in answers) for q, answers in gold.items()}
    preds = {q: ("" if diffs[q] > threshold else span_preds[q]) for q in gold}
    exact, f1 = _scores(gold, preds)
    span_exact, span_f1 = _scores(gold, span_preds)
    has = [q for q in gold if has_ans[q]]
    no = [q for q in gold if not has_ans[q]]

    def pct(values: Mapping[str, float], qids: Sequence[str]) -> float:
        return 100.0 * sum(values[q] for q in qids) / len(qids) if qids else float("nan")

    best_exact, best_exact_thresh = _find_best_thresh(span_preds, span_exact, diffs, has_ans)
    best_f1, best_f1_thresh = _find_best_thresh(span_preds, span_f1, diffs, has_ans)
    return {
        "total": len(gold),
        "threshold": threshold,
        "exact": pct(exact, list(gold)),
        "f1": pct(f1, list(gold)),
        "HasAns_total": len(has),
        "HasAns_exact": pct(exact, has),
        "HasAns_f1": pct(f1, has),
        "NoAns_total": len(no),
        "NoAns_acc": pct(exact, no),
        "best_exact": best_exact,
        "best_exact_thresh": best_exact_thresh,
        "best_f1": best_f1,
        "best_f1_thresh": best_f1_thresh,
    }


# --------------------------------------------------------------------------- prediction


@dataclass
class BestSpan:
    """A question's best non-null span over its windows, and the smallest null score."""

    score: float  # raw start + end logit
    start: int  # character offsets in the example's context
    end: int
    null: float
    state: np.ndarray | None = None  # last-layer [CLS], start and end vectors of its window


def best_spans(
    model,
    tokenizer,
    examples: Sequence,
    max_length: int = 256,
    stride: int = 128,
    max_answer_tokens: int = 30,
    batch_size: int = 64,
    device: str = "cpu",
    bf16: bool = False,
    states: bool = False,
) -> dict[int, BestSpan]:
    """Example index -> :class:`BestSpan` (absent when no context token fits a window).

    ``states``: also keep the encoder's last-layer vectors of [CLS] and of the span's first and
    last token, from the span's window (for studies of the no-answer signal).
    """
    import torch

    from rag.readers.spans import context_mask, top_spans
    from rag.training.data import build_eval_windows, collate

    windows = build_eval_windows(tokenizer, examples, max_length, stride)
    order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
    best: dict[int, tuple[float, int, int, np.ndarray | None]] = {}  # score, start, end, state
    null: dict[int, float] = {}
    pad_id = tokenizer.pad_token_id or 0
    model.eval()
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch = collate([windows[k] for k in idx], pad_id=pad_id)
            inputs = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
                out = model(**inputs, output_hidden_states=states)
            starts = out.start_logits.float().cpu()
            ends = out.end_logits.float().cpu()
            hidden = out.hidden_states[-1].float().cpu() if states else None
            offsets = [windows[k].offsets for k in idx]
            context = context_mask(offsets, starts.shape[1])
            tops = top_spans(starts, ends, context, max_answer_tokens, k=1)
            nulls = (starts[:, 0] + ends[:, 0]).tolist()
            for r, k in enumerate(idx):
                ex = windows[k].example_index
                null[ex] = min(null.get(ex, np.inf), nulls[r])
                if tops[r]:
                    score, i, j = tops[r][0]
                    if ex not in best or score > best[ex][0]:
                        state = None
                        if hidden is not None:
                            state = torch.cat([hidden[r, 0], hidden[r, i], hidden[r, j]]).numpy()
                        best[ex] = (score, offsets[r][i][0], offsets[r][j][1], state)
    return {ex: BestSpan(s, a, b, null[ex], state) for ex, (s, a, b, state) in best.items()}


def predictions(
    examples: Sequence, best: Mapping[int, BestSpan]
) -> tuple[dict[str, str], dict[str, float]]:
    """Best non-null span text and ``null - best span`` per question id, from :func:`best_spans`."""
    span_preds: dict[str, str] = {}
    diffs: dict[str, float] = {}
    for ex_i, ex in enumerate(examples):
        if ex_i in best:
            span = best[ex_i]
            span_preds[ex.qid] = ex.context[span.start : span.end]
            diffs[ex.qid] = span.null - span.score
        else:  # no context token fits (cannot happen with sane lengths): abstain
            span_preds[ex.qid] = ""
            diffs[ex.qid] = float("inf")
    return span_preds, diffs


def evaluate_reader(
    model_dir: str | Path,
    limit: int = 0,
    max_length: int = 256,
    stride: int = 128,
    max_answer_tokens: int = 30,
    batch_size: int = 64,
    device: str = "auto",
    threads: int = 2,
    bf16: bool = False,
    predictions_out: str = "",
    data_dir: Path | None = None,
) -> dict:
    """Held-out SQuAD2 metrics of the reader in ``model_dir`` (first ``limit`` questions)."""
    import torch
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    from rag.training import data as D
    from rag.training.train import load_tokenizer, resolve_device

    hf_logging.set_verbosity_error()
    if threads > 0:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    t0 = time.time()
    examples = D.heldout_examples(data_dir or D.DATA_DIR)
    if limit and limit > 0:
        examples = examples[:limit]
    tokenizer = load_tokenizer(str(model_dir))
    model = AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32)
    model.to(dev)
    best = best_spans(
        model,
        tokenizer,
        examples,
        max_length,
        stride,
        max_answer_tokens,
        batch_size,
        str(dev),
        bf16,
    )
    span_preds, diffs = predictions(examples, best)
    gold = {e.qid: list(e.answers) for e in examples}
    metrics = squad2_metrics(gold, span_preds, diffs, threshold=0.0)
    metrics.update(
        {
            "model": str(model_dir),
            "split": "SQuAD v2.0 dev, held-out half (odd positions of sorted titles)",
            "limit": limit or None,
            "max_length": max_length,
            "stride": stride,
            "max_answer_tokens": max_answer_tokens,
            "seconds": round(time.time() - t0, 1),
        }
    )
    if predictions_out:
        Path(predictions_out).write_text(
            json.dumps(
                {q: {"span": span_preds[q], "null_minus_span": diffs[q]} for q in gold},
                indent=1,
            )
        )
    return metrics
