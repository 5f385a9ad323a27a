"""Fit the span reader's score calibration on the held-out half of SQuAD v2.0 dev.

Each sampled question is read from ONE forward pass in three settings: its own paragraph alone
(``single``), its paragraph plus the distractors (``mixed``, mimicking retrieval), and the
distractors alone (``absent``: unanswerable, as when the documents lack the answer). The
distractors are the paragraphs of the same article most similar to the question under the
service's embedding model (never one that holds the answer), and every setting's passages are
ordered by that similarity, best first, as retrieval hands them to the reader.

Every top candidate span becomes a row (features of :func:`rag.readers.calibration.span_features`,
label: token F1 >= 0.5 against a gold answer; never for an unanswerable question). A logistic
regression on the rows of one half of the articles (:func:`rag.training.squad.fit_titles`) is the
calibration. The abstention threshold maximises SQuAD2 F1 of ``mixed`` + ``absent``
(``product``) on that half, reweighted to ``noans_share`` unanswerable questions (SQuAD v2 has
~50%, a document QA service far fewer; the logistic fit is weighted the same way), among the
thresholds that refuse at most ``max_false_refusal`` of its answerable questions. Figures are
reported for the other half (never fitted on).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from rag.answer import Passage
from rag.readers.calibration import FEATURES, Calibration
from rag.readers.engine import WindowSpans
from rag.readers.span import SpanReader, select_spans
from rag.training.squad import (
    QAExample,
    answer_occurs,
    exact_match,
    examples_from_articles,
    fit_titles,
    heldout_articles,
    token_f1,
)

SETTINGS = ("single", "mixed", "absent", "product")
PRODUCT = ("mixed", "absent")  # what the service sees: the answer retrieved, or not at all
THRESHOLDS = [round(i / 100, 2) for i in range(1, 100)]
CORRECT_F1 = 0.5


@dataclass
class Item:
    """One question with its passages best first; ``texts[gold]`` is its own paragraph."""

    qid: str
    title: str
    question: str
    answers: tuple[str, ...]
    texts: list[str]
    gold: int = 0


@dataclass
class Row:
    """One candidate span of one (question, setting)."""

    features: tuple[float, ...]
    text: str


@dataclass
class Read:
    """The candidates of one (question, setting), and the question's gold answers."""

    qid: str
    title: str
    setting: str
    answers: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------
def sample_items(
    limit: int, distractors: int, seed: int, data_dir: Path, encoder: Encoder
) -> list[Item]:
    """``limit`` random held-out questions (0 = all), each with up to ``distractors`` others.

    The distractors are the other paragraphs of the article closest to the question (cosine of
    ``encoder`` vectors) that do not contain an answer; all passages come ordered by it.
    """
    held = heldout_articles(data_dir)
    picks: list[tuple[QAExample, list[str], int]] = []
    for article in held:
        paras = [p["context"] for p in article["paragraphs"]]
        for pi, para in enumerate(article["paragraphs"]):
            for ex in examples_from_articles([{"title": article["title"], "paragraphs": [para]}]):
                picks.append((ex, paras, pi))
    random.Random(seed).shuffle(picks)
    picks = picks[:limit] if limit else picks
    texts = sorted({t for _, paras, _ in picks for t in paras})
    row = {t: i for i, t in enumerate(texts)}
    para_vecs = encoder.encode(texts)
    q_vecs = encoder.encode([ex.question for ex, _, _ in picks])
    items: list[Item] = []
    for (ex, paras, pi), q in zip(picks, q_vecs, strict=True):
        sim = {j: float(para_vecs[row[c]] @ q) for j, c in enumerate(paras)}
        others = [j for j in range(len(paras)) if j != pi]
        others = [j for j in others if not answer_occurs(ex.answers, paras[j])]
        chosen = sorted(others, key=lambda j: -sim[j])[:distractors]
        ranked = sorted([pi, *chosen], key=lambda j: -sim[j])
        items.append(
            Item(
                ex.qid,
                ex.title,
                ex.question,
                ex.answers,
                [paras[j] for j in ranked],
                ranked.index(pi),
            )
        )
    return items


# -- reading ---------------------------------------------------------------------------------
def subset(windows: list[WindowSpans], passages: list[int]) -> list[WindowSpans]:
    """The windows that belong to ``passages``, their ``pair`` renumbered to positions there."""
    position = {p: i for i, p in enumerate(passages)}
    return [replace(w, pair=position[w.pair]) for w in windows if w.pair in position]


def read_item(reader: SpanReader, item: Item, top: int) -> list[Read]:
    """The settings of one item from a single forward pass; ``top`` candidates each.

    ``single``: the own paragraph; ``mixed``: with the distractors; ``absent``: the distractors
    only, so the question is unanswerable (as when retrieval misses or the corpus lacks it).
    Each setting keeps the similarity order, so ``passage_rank`` is the rank within it.
    """
    windows = reader.forward(item.question, item.texts)
    every = list(range(len(item.texts)))
    settings = [("single", [item.gold], item.answers), ("mixed", every, item.answers)]
    if len(item.texts) > 1 and item.answers:
        settings.append(("absent", [i for i in every if i != item.gold], ()))
    out = []
    for setting, keep, answers in settings:
        texts = [item.texts[i] for i in keep]
        passages = [
            Passage(doc_id=f"p{i}", title=item.title, start=0, end=len(t), text=t, score=0.0)
            for i, t in enumerate(texts)
        ]
        cands = reader.decode(item.question, texts, subset(windows, keep))
        cands.sort(key=lambda c: -c.logit)  # rank by raw logit, independent of any calibration
        feats: dict[tuple[int, int, int], tuple[float, ...]] = {}
        for c in cands:  # the best-scoring copy when windows overlap
            feats.setdefault((c.passage_index, c.start, c.end), c.features)
        spans = select_spans(cands, passages, top)
        rows = [Row(feats[(s.passage_index, s.start, s.end)], s.text) for s in spans]
        out.append(Read(item.qid, item.title, setting, answers, rows))
    return out


# -- fitting and scoring ---------------------------------------------------------------------
def label(row: Row, answers: tuple[str, ...]) -> int:
    return int(bool(answers) and token_f1(row.text, answers) >= CORRECT_F1)


def prior_weights(reads: list[Read], noans_share: float) -> tuple[float, float]:
    """(answerable, unanswerable) weights that make unanswerables ``noans_share`` of the mass."""
    n_no = sum(not rd.answers for rd in reads)
    n_has = len(reads) - n_no
    if not n_no or not n_has:
        return 1.0, 1.0
    return (1 - noans_share) * len(reads) / n_has, noans_share * len(reads) / n_no


def fit(reads: list[Read], c: float = 1.0, noans_share: float = 0.2) -> Calibration:
    """Logistic regression of ``label`` on the features of every candidate row.

    Rows are weighted so that unanswerable questions make up ``noans_share`` of the questions:
    the score is then P(correct) under that prior rather than under SQuAD v2's ~50%.
    """
    from sklearn.linear_model import LogisticRegression

    w_has, w_no = prior_weights(reads, noans_share)
    x = np.array([r.features for rd in reads for r in rd.rows], dtype=np.float64)
    y = np.array([label(r, rd.answers) for rd in reads for r in rd.rows])
    w = np.array([w_has if rd.answers else w_no for rd in reads for r in rd.rows])
    lr = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=w)
    return Calibration(tuple(float(w) for w in lr.coef_[0]), float(lr.intercept_[0]), None, "fit")


def predict(rd: Read, cal: Calibration) -> tuple[str, float]:
    """The best candidate's text and calibrated score ('' and 0 without candidates)."""
    if not rd.rows:
        return "", 0.0
    scored = [(cal.score(r.features), r.text) for r in rd.rows]
    score, text = max(scored, key=lambda t: t[0])
    return text, score


def metrics(
    reads: list[Read], cal: Calibration, threshold: float, noans_share: float = 0.2
) -> dict[str, float]:
    """SQuAD2-style figures at a threshold (abstaining scores 1 on NoAns, 0 on HasAns).

    ``overall_f1`` is over the questions as sampled; ``prior_f1`` reweights them to
    ``noans_share`` unanswerable questions.
    """
    has_f1, has_em, no_ok, overall = [], [], [], []
    refused = 0
    for rd in reads:
        text, score = predict(rd, cal)
        answer = text if score >= threshold else ""
        if rd.answers:
            f1 = token_f1(answer, rd.answers) if answer else 0.0
            has_f1.append(f1)
            has_em.append(exact_match(answer, rd.answers) if answer else 0.0)
            refused += not answer
            overall.append(f1)
        else:
            no_ok.append(float(not answer))
            overall.append(float(not answer))
    return {
        "n": len(reads),
        "has_ans": len(has_f1),
        "has_ans_f1": _mean(has_f1),
        "has_ans_em": _mean(has_em),
        "no_ans_acc": _mean(no_ok),
        "overall_f1": _mean(overall),
        "prior_f1": round((1 - noans_share) * _mean(has_f1) + noans_share * _mean(no_ok), 4),
        "false_refusal": round(refused / max(1, len(has_f1)), 4),
    }


def _mean(values: list[float]) -> float:
    return round(float(np.mean(values)), 4) if values else float("nan")


def best_threshold(
    reads: list[Read], cal: Calibration, noans_share: float, max_false_refusal: float = 1.0
) -> float:
    """The threshold that maximises ``prior_f1`` (ties: the lowest) among those that refuse at
    most ``max_false_refusal`` of the answerable questions."""
    table = {t: metrics(reads, cal, t, noans_share) for t in THRESHOLDS}
    allowed = [t for t in THRESHOLDS if table[t]["false_refusal"] <= max_false_refusal]
    return max(allowed or THRESHOLDS[:1], key=lambda t: (table[t]["prior_f1"], -t))


def split_by_title(reads: list[Read]) -> tuple[list[Read], list[Read]]:
    """(fit, test): articles alternate by sorted title (:func:`fit_titles`), none in both."""
    fit = fit_titles(r.title for r in reads)
    return [r for r in reads if r.title in fit], [r for r in reads if r.title not in fit]


# -- the run -----------------------------------------------------------------------------------
@dataclass
class CalibrationConfig:
    """What a calibration fit reads and how it chooses (the ``calibrate-reader`` options)."""

    model: str
    data_dir: str
    limit: int = 1500  # held-out questions to sample (0 = all)
    distractors: int = 4  # other paragraphs per question: five passages, as the service reads
    top: int = 5  # candidate spans per read
    c: float = 1.0  # inverse L2 strength of the fit
    seed: int = 7
    threads: int = 0
    precision: str = "fp32"
    noans_share: float = 0.2  # expected share of unanswerable questions in use
    max_false_refusal: float = 0.05  # largest share of answerable questions the threshold refuses
    cache: str = ""  # JSON file of the reads (reused when it exists)
    dry_run: bool = False  # report, do not write calibration.json


def calibrate(cfg: CalibrationConfig, reader: SpanReader, encoder: Encoder) -> dict:
    """Read, fit on one half of the articles, choose the threshold, report on the other half;
    writes ``calibration.json`` beside the weights unless ``dry_run``."""
    reader.warm_up()
    reader.calibration = Calibration.fallback()  # features are calibration-free; start clean
    t0 = time.perf_counter()
    reads = read_all(reader, encoder, cfg)
    share = cfg.noans_share
    fit_reads, test_reads = split_by_title(reads)
    cal = fit(fit_reads, cfg.c, share)
    product = [r for r in fit_reads if r.setting in PRODUCT]
    threshold = best_threshold(product, cal, share, cfg.max_false_refusal)
    cal = replace(cal, threshold=threshold)

    def part(reads: list[Read], setting: str, c: Calibration, t: float) -> dict[str, float]:
        keep = PRODUCT if setting == "product" else (setting,)
        return metrics([r for r in reads if r.setting in keep], c, t, share)

    report = {
        setting: {
            "fit": part(fit_reads, setting, cal, threshold),
            "test": part(test_reads, setting, cal, threshold),
            "test_answer_all": part(test_reads, setting, cal, 0.0),
            "test_fallback_0.5": part(test_reads, setting, Calibration.fallback(), 0.5),
        }
        for setting in SETTINGS
    }
    spec = reader.spec
    record = {
        "noans_share": share,
        "max_false_refusal": cfg.max_false_refusal,
        "label": f"candidate span token F1 >= {CORRECT_F1} (never for unanswerable questions)",
        "fitted_on": {
            "data": "SQuAD v2.0 dev, held-out half (rag.training.squad), fit articles",
            "questions": len({r.qid for r in fit_reads}),
            "rows": sum(len(r.rows) for r in fit_reads),
            "limit": cfg.limit,
            "distractors": cfg.distractors,
            "seed": cfg.seed,
            "max_length": spec.max_length,
            "stride": spec.stride,
            "max_question_tokens": spec.max_question_tokens,
            "max_answer_tokens": reader.max_answer_tokens,
            "precision": cfg.precision,
        },
        "report": report,
        "read_seconds": round(time.perf_counter() - t0, 1),
    }
    if not cfg.dry_run:
        cal.save(cfg.model, record)
    return (
        {"features": list(FEATURES), "weights": list(cal.weights), "bias": cal.bias}
        | {"threshold": threshold}
        | record
    )


def read_all(reader: SpanReader, encoder: Encoder, cfg: CalibrationConfig) -> list[Read]:
    """Every sampled item read in every setting (loaded from ``cfg.cache`` when it exists)."""
    cache = Path(cfg.cache) if cfg.cache else None
    if cache and cache.is_file():
        return [_read_from(d) for d in json.loads(cache.read_text())]
    items = sample_items(cfg.limit, cfg.distractors, cfg.seed, Path(cfg.data_dir), encoder)
    t0 = time.perf_counter()
    reads: list[Read] = []
    for n, item in enumerate(items, 1):
        reads.extend(read_item(reader, item, cfg.top))
        if n % 200 == 0:
            print(f"  read {n}/{len(items)} ({time.perf_counter() - t0:.0f}s)", flush=True)
    if cache:
        cache.write_text(json.dumps([asdict(r) for r in reads]))
    return reads


def _read_from(d: dict) -> Read:
    rows = [Row(tuple(r["features"]), r["text"]) for r in d["rows"]]
    return Read(d["qid"], d["title"], d["setting"], tuple(d["answers"]), rows)
