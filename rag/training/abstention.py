"""How far can a verifier on top of the reader lift abstention on held-out SQuAD v2.0? A study.

The reader's held-out best F1 is limited by its no-answer signal. This measures that signal and
verifiers built on top of it, each by its AUC (answerable against unanswerable) and the official
best F1 when it replaces ``null - best span`` as the abstention score:

- ``diff``: the reader's own ``null - best span`` (what ``eval-reader`` uses);
- ``lexical``: a logistic regression over question/passage word features (:func:`lexical_features`),
  fitted on the train half;
- ``diff + w * lexical``: both together, for a few weights ``w``;
- ``states``: a logistic probe of the reader's last-layer [CLS], start and end vectors, fitted on
  the train half;
- ``states, held-out CV``: the same probe fitted by 5-fold cross-validation over the held-out
  articles themselves. It sees held-out labels, so it is an optimistic ceiling, never a figure to
  ship.

``diff`` on the train half shows how far the reader has memorised the unanswerables it was
trained on.

    python -m rag.training.abstention --model models/reader [--limit N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.readers.span import sentence_around
from rag.readers.words import content_words
from rag.sentences import split_sentences
from rag.training import data as D
from rag.training.squad_eval import best_spans, predictions, squad2_metrics

LEXICAL = (
    "absent_in_paragraph",
    "absent_in_sentence",
    "names_absent",
    "numbers_absent",
    "negation_only_in_question",
    "negation_only_in_sentence",
    "span_words_in_question",
    "question_words",
)
WEIGHTS = (0.5, 1.0, 2.0, 3.0, 5.0)
STEM = 5
_NEGATION = re.compile(r"\b(not|never|no|none|neither|nor|without|cannot)\b|n't\b", re.IGNORECASE)
_NAME = re.compile(r"(?<!^)\b[A-Z][\w-]*")
_NUMBER = re.compile(r"\b\w*\d[\w.,]*")


@dataclass
class Signals:
    """What the reader says about each question of one half."""

    qids: list[str]
    titles: list[str]
    answerable: np.ndarray  # 1 / 0
    spans: dict[str, str]  # best non-null span
    diff: np.ndarray  # null - best span
    states: np.ndarray  # [questions, 3 * hidden]
    lexical: np.ndarray  # [questions, len(LEXICAL)]


def lexical_features(question: str, context: str, span_start: int, span_end: int) -> list[float]:
    """The :data:`LEXICAL` features of a question, its paragraph and its best span."""
    a, b = sentence_around(split_sentences(context), span_start, span_end)
    sentence = context[a:b]
    q_words = content_words(question, STEM)
    in_paragraph = content_words(context, STEM)
    in_sentence = content_words(sentence, STEM)
    names = {w.lower()[:STEM] for w in _NAME.findall(question)}
    numbers = {n.lower() for n in _NUMBER.findall(question)}
    q_neg, s_neg = bool(_NEGATION.search(question)), bool(_NEGATION.search(sentence))
    n = max(1, len(q_words))
    return [
        len(q_words - in_paragraph) / n,
        len(q_words - in_sentence) / n,
        float(len(names - in_paragraph)),
        float(sum(x not in context.lower() for x in numbers)),
        float(q_neg and not s_neg),
        float(s_neg and not q_neg),
        float(len(content_words(context[span_start:span_end], STEM) & q_words)),
        float(len(q_words)),
    ]


def read_half(model, tokenizer, examples: Sequence[D.QAExample], **kw) -> Signals:
    """The reader's best span, ``diff``, vectors and lexical features for every example."""
    best = best_spans(model, tokenizer, examples, states=True, **kw)
    spans, diffs = predictions(examples, best)
    width = next(iter(best.values())).state.shape[0] if best else 0
    states, lexical = [], []
    for i, ex in enumerate(examples):
        b = best.get(i)
        start, end = (b.start, b.end) if b else (0, 0)
        states.append(b.state if b is not None and b.state is not None else np.zeros(width))
        lexical.append(lexical_features(ex.question, ex.context, start, end))
    return Signals(
        [e.qid for e in examples],
        [e.title for e in examples],
        np.array([int(bool(e.answers)) for e in examples]),
        spans,
        np.array([min(diffs[e.qid], 1e9) for e in examples]),  # no span (inf): abstain
        np.array(states, dtype=np.float32),
        np.array(lexical, dtype=np.float64),
    )


def _probe(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))


def _score(held: Signals, gold: dict[str, list[str]], answerability: np.ndarray) -> dict:
    """AUC and official best F1 / EM of an answerability score (higher = answer)."""
    from sklearn.metrics import roc_auc_score

    diffs = {q: -float(s) for q, s in zip(held.qids, answerability, strict=True)}
    m = squad2_metrics(gold, held.spans, diffs)
    both = len(set(held.answerable.tolist())) == 2
    auc = float(roc_auc_score(held.answerable, answerability)) if both else float("nan")
    return {
        "auc": round(auc, 3),
        "best_f1": round(m["best_f1"], 2),
        "best_exact": round(m["best_exact"], 2),
    }


def study(train: Signals, held: Signals, gold: dict[str, list[str]], c: float = 0.01) -> dict:
    """Every verifier of the module docstring, scored on ``held``; see there."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold

    rows: dict[str, dict] = {"diff": _score(held, gold, -held.diff)}
    lexical = _probe(1.0).fit(train.lexical, train.answerable)
    lex = lexical.decision_function(held.lexical)
    rows["lexical (fit on train half)"] = _score(held, gold, lex)
    for w in WEIGHTS:
        rows[f"diff + {w:g} * lexical"] = _score(held, gold, -held.diff + w * lex)
    probe = _probe(c).fit(train.states, train.answerable)
    rows["states (fit on train half)"] = _score(held, gold, probe.decision_function(held.states))
    folds = min(5, len(set(held.titles)))
    if folds >= 2:
        oof = np.zeros(len(held.qids))
        for fit, test in GroupKFold(folds).split(held.states, held.answerable, held.titles):
            oof[test] = (
                _probe(c)
                .fit(held.states[fit], held.answerable[fit])
                .decision_function(held.states[test])
            )
        rows["states, held-out CV (ceiling)"] = _score(held, gold, oof)
    return {
        "held_out": rows,
        "train_half_auc_of_diff": round(float(roc_auc_score(train.answerable, -train.diff)), 4),
        "lexical_weights": dict(
            zip(LEXICAL, np.round(lexical[-1].coef_[0], 3).tolist(), strict=True)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForQuestionAnswering
    from transformers.utils import logging as hf_logging

    from rag.training.train import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/reader")
    ap.add_argument("--limit", type=int, default=0, help="first N questions of each half; 0 = all")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="no bfloat16 autocast (slower on CPU)")
    ap.add_argument("--data-dir", type=Path, default=D.DATA_DIR)
    ap.add_argument("--out", default="", help="also write the figures here (JSON)")
    args = ap.parse_args(argv)
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    train_articles, held_articles = D.split_v2_dev(D.load_articles(args.data_dir / D.SQUAD_V2_DEV))
    halves = [D.examples_from_articles(a) for a in (train_articles, held_articles)]
    if args.limit > 0:
        halves = [h[: args.limit] for h in halves]
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model, dtype=torch.float32)
    kw = {"max_length": args.max_length, "stride": args.stride, "bf16": not args.fp32}
    train, held = (read_half(model, tokenizer, h, **kw) for h in halves)
    gold = {e.qid: list(e.answers) for e in halves[1]}
    report = {
        "model": args.model,
        "questions": [len(h) for h in halves],
        **study(train, held, gold),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
