"""SQuAD-format data: the files, the fixed article splits, and the official SQuAD 2.0 metrics.

The article split of SQuAD v2.0 dev (:func:`split_v2_dev`): titles sorted with Python's
``sorted`` (code-point order); even positions (0, 2, 4, ...) form the *train* half (its real
unanswerable questions may be trained on), odd positions the *held-out* half, never trained on.
The calibration splits the held-out half the same way again (:func:`fit_titles`).

Metrics follow the official SQuAD 2.0 evaluation script (answer normalisation, EM, F1, HasAns
and NoAns breakdowns, best threshold search).
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SQUAD_TRAIN = "squad-v1.1-train-from-explorer.json.gz"
SQUAD_V2_DEV = "squad-v2.0-dev-from-explorer.json.gz"
SHIFTS = ("new_wiki_v1.0.json.gz", "reddit_v1.0.json.gz", "amazon_reviews_v1.0.json.gz")


@dataclass(frozen=True)
class QAExample:
    """One question over one context; unanswerable when ``answer_start < 0``."""

    qid: str
    title: str
    question: str
    context: str
    answer_text: str = ""
    answer_start: int = -1
    answers: tuple[str, ...] = ()  # every reference answer (for evaluation); () when unanswerable
    source: str = ""

    @property
    def is_impossible(self) -> bool:
        return self.answer_start < 0


# --------------------------------------------------------------------------- files and splits


def load_articles(path: str | Path) -> list[dict]:
    """The ``data`` list of a gzip (or plain) SQuAD-format JSON file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)["data"]


def examples_from_articles(articles: Iterable[dict], source: str = "") -> list[QAExample]:
    """Flatten articles into examples; the first reference answer is the training target."""
    out: list[QAExample] = []
    for article in articles:
        title = article.get("title", "")
        for para in article["paragraphs"]:
            context = para["context"]
            for qa in para["qas"]:
                answers = [a for a in qa.get("answers", []) if a.get("text")]
                question = qa["question"].strip()
                if qa.get("is_impossible") or not answers:
                    out.append(QAExample(qa["id"], title, question, context, source=source))
                    continue
                first = answers[0]
                out.append(
                    QAExample(
                        qa["id"],
                        title,
                        question,
                        context,
                        answer_text=first["text"],
                        answer_start=int(first["answer_start"]),
                        answers=tuple(a["text"] for a in answers),
                        source=source,
                    )
                )
    return out


def alternate_titles(titles: Iterable[str]) -> tuple[set[str], set[str]]:
    """(even, odd) positions of the sorted distinct titles: every article split here."""
    ordered = sorted(set(titles))
    return set(ordered[0::2]), set(ordered[1::2])


def split_v2_dev(articles: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """(train half, held-out half) of SQuAD v2.0 dev (:func:`alternate_titles`)."""
    train_titles, _ = alternate_titles(a["title"] for a in articles)
    train = [a for a in articles if a["title"] in train_titles]
    held = [a for a in articles if a["title"] not in train_titles]
    return train, held


def heldout_articles(data_dir: Path) -> list[dict]:
    """The held-out half of SQuAD v2.0 dev in ``data_dir``."""
    return split_v2_dev(load_articles(Path(data_dir) / SQUAD_V2_DEV))[1]


def heldout_examples(data_dir: Path) -> list[QAExample]:
    """Every question of the held-out half of SQuAD v2.0 dev, in file order."""
    return examples_from_articles(heldout_articles(data_dir), source="v2dev-heldout")


def fit_titles(titles: Iterable[str]) -> set[str]:
    """The held-out articles the calibration is fitted on (the rest only ever test it)."""
    return alternate_titles(titles)[0]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def answer_occurs(answers: Iterable[str], context: str) -> bool:
    """Whether any answer text occurs in the context (case- and whitespace-insensitive)."""
    ctx = _norm(context)
    return any(_norm(a) and _norm(a) in ctx for a in answers)


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
