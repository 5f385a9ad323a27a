"""Evaluation metrics as pure functions: answer normalisation, EM/F1, retrieval hits, summaries.

Definitions (also in the README of ``verbatim eval``):

* A passage *hits* when it belongs to an accepted document (``doc`` or ``also_in``) and its text
  contains the evidence sentence or a gold answer, or its span overlaps the evidence's span in
  the document. ``hit@k`` is the share of answerable questions with a hit among the first ``k``
  passages (``None`` when fewer than ``k`` passages were retrieved); ``mrr`` is the mean of
  ``1 / rank`` of the first hit (0 without one).
* ``doc_recall@k``: share of answerable questions with an accepted document among the first
  ``k`` passages.
* ``em`` / ``f1``: SQuAD-normalised, max over gold answers, mean over answerable questions (an
  abstention scores 0).
* ``citation``: share of answered questions whose first citation is in an accepted document and
  overlaps the evidence or a gold answer occurrence (an answered unanswerable question counts as a
  wrong citation).
* ``abstain_unanswerable``: share of unanswerable questions refused; ``false_refusal``: share of
  answerable questions refused.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The official SQuAD answer metrics, re-exported here for the harness.
from rag.training.squad import exact_match as exact_match
from rag.training.squad import normalize_answer as normalize_answer
from rag.training.squad import token_f1 as token_f1

Span = tuple[int, int]
HIT_KS = (1, 3, 5, 10)
STAGES = ("retrieve", "read", "total", "wall")  # wall: the client's own clock


# -- spans and hits --------------------------------------------------------------------------
def overlaps(a: Span, b: Span) -> bool:
    """Whether two half-open character spans share at least one character."""
    return a[0] < b[1] and b[0] < a[1]


def find_all(text: str, needle: str) -> list[Span]:
    """Every (start, end) occurrence of ``needle`` in ``text`` (overlapping ones included)."""
    spans: list[Span] = []
    if not needle:
        return spans
    pos = text.find(needle)
    while pos >= 0:
        spans.append((pos, pos + len(needle)))
        pos = text.find(needle, pos + 1)
    return spans


@dataclass
class Gold:
    """What counts as support for one question's answer."""

    accepted: frozenset[str]
    answers: tuple[str, ...] = ()
    evidence: str = ""
    evidence_spans: dict[str, list[Span]] = field(default_factory=dict)
    answer_spans: dict[str, list[Span]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        accepted: Iterable[str],
        answers: Sequence[str],
        evidence: str,
        documents: dict[str, str],
    ) -> Gold:
        """Locate the evidence and every answer occurrence in the accepted documents."""
        accepted = frozenset(accepted)
        ev: dict[str, list[Span]] = {}
        ans: dict[str, list[Span]] = {}
        for doc_id in accepted:
            text = documents.get(doc_id)
            if text is None:
                continue
            ev[doc_id] = find_all(text, evidence.strip())
            ans[doc_id] = sorted({s for a in answers for s in find_all(text, a)})
        return cls(accepted, tuple(answers), evidence.strip(), ev, ans)

    def local_spans(self, doc_id: str, text: str, start: int) -> tuple[list[Span], list[Span]]:
        """Evidence and answer spans known for ``doc_id``, or else found in ``text`` at ``start``."""
        if doc_id in self.evidence_spans:
            return self.evidence_spans[doc_id], self.answer_spans[doc_id]
        shift = lambda spans: [(a + start, b + start) for a, b in spans]  # noqa: E731
        ev = shift(find_all(text, self.evidence))
        ans = shift(sorted({s for a in self.answers for s in find_all(text, a)}))
        return ev, ans


def passage_hits(doc_id: str, start: int, end: int, text: str, gold: Gold) -> bool:
    """Whether a passage of an accepted document contains the evidence or an answer."""
    if doc_id not in gold.accepted:
        return False
    if gold.evidence and gold.evidence in text:
        return True
    if any(a and a in text for a in gold.answers):
        return True
    ev, _ = gold.local_spans(doc_id, text, start)
    return any(overlaps((start, end), s) for s in ev)


def first_hit_rank(passages: Sequence[dict], gold: Gold) -> int | None:
    """1-based rank of the first hitting passage, or None."""
    for rank, p in enumerate(passages, start=1):
        if passage_hits(p["doc_id"], p["start"], p["end"], p["text"], gold):
            return rank
    return None


def first_doc_rank(passages: Sequence[dict], accepted: Iterable[str]) -> int | None:
    """1-based rank of the first passage from an accepted document, or None."""
    accepted = set(accepted)
    return next((r for r, p in enumerate(passages, start=1) if p["doc_id"] in accepted), None)


def citation_correct(citation: dict | None, gold: Gold) -> bool:
    """Whether a citation is in an accepted document and overlaps the evidence or an answer."""
    if not citation or citation["doc_id"] not in gold.accepted:
        return False
    doc_id, span = citation["doc_id"], (citation["start"], citation["end"])
    ev, ans = gold.local_spans(
        doc_id, citation.get("passage", ""), citation.get("passage_start", 0)
    )
    return any(overlaps(span, s) for s in [*ev, *ans])


# -- aggregates ------------------------------------------------------------------------------
def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def hit_at_k(ranks: Sequence[int | None], k: int) -> float | None:
    """Share of questions whose first hit is within rank ``k``."""
    return mean(float(r is not None and r <= k) for r in ranks)


def mrr(ranks: Sequence[int | None]) -> float | None:
    """Mean reciprocal rank of the first hit (0 without a hit)."""
    return mean(1.0 / r if r else 0.0 for r in ranks)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def is_accepted(
    score: float, threshold: float | None, has_candidate: bool, abstained: bool
) -> bool:
    """Whether an answer stands: ``score >= threshold`` (or the service's own call if None)."""
    if threshold is None:
        return not abstained
    return has_candidate and score >= threshold


def apply_threshold(record: dict, threshold: float | None) -> dict:
    """The record with ``accepted``, ``answer``, ``em``, ``f1`` and ``citation_ok`` decided.

    ``record`` holds the service's raw call (``abstained``, ``score``) and its best candidate's
    scores (``cand_em``, ``cand_f1``, ``cand_citation_ok``), so any threshold is re-decided
    offline without asking the model again.
    """
    ok = is_accepted(
        record["score"], threshold, record.get("candidate") is not None, record["abstained"]
    )
    return {
        **record,
        "accepted": ok,
        "answer": record.get("candidate") if ok else None,
        "em": record["cand_em"] if ok else 0.0,
        "f1": record["cand_f1"] if ok else 0.0,
        "citation_ok": bool(ok and record["cand_citation_ok"]),
    }


def sweep(records: Sequence[dict], thresholds: Iterable[float]) -> list[dict[str, float | None]]:
    """Answer quality and coverage as the no-answer threshold varies."""
    points = []
    for t in thresholds:
        decided = [apply_threshold(r, t) for r in records]
        m = summarize(decided)
        points.append(
            {
                "threshold": round(t, 4),
                "coverage": m["coverage"],
                "em": m["em"],
                "f1": m["f1"],
                "f1_answered": mean(r["f1"] for r in decided if r["answerable"] and r["accepted"]),
                "citation": m["citation"],
                "abstain_unanswerable": m["abstain_unanswerable"],
                "false_refusal": m["false_refusal"],
                "overall_f1": squad2_f1(decided),
            }
        )
    return points


def best_threshold(points: Sequence[dict]) -> float | None:
    """The threshold with the best overall F1 (ties: the lowest, i.e. the most coverage)."""
    scored = [p for p in points if p["overall_f1"] is not None]
    if not scored:
        return None
    return max(scored, key=lambda p: (p["overall_f1"], -p["threshold"]))["threshold"]


def summarize(records: Sequence[dict], top_k: int | None = None) -> dict[str, float | None]:
    """Every metric over per-question records (see :func:`eval.harness.score_record`)."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    answered = [r for r in records if r["accepted"]]
    ranks = [r["hit_rank"] for r in answerable]
    doc_ranks = [r["doc_rank"] for r in answerable]
    out: dict[str, float | None] = {"n": float(len(records))}
    for k in HIT_KS:
        measured = top_k is None or k <= top_k
        out[f"hit@{k}"] = hit_at_k(ranks, k) if measured else None
    for k in HIT_KS:
        measured = top_k is None or k <= top_k
        out[f"doc_recall@{k}"] = hit_at_k(doc_ranks, k) if measured else None
    out["mrr"] = mrr(ranks)
    out["em"] = mean(r["em"] for r in answerable)
    out["f1"] = mean(r["f1"] for r in answerable)
    out["coverage"] = mean(float(r["accepted"]) for r in records)
    out["citation"] = mean(float(r["citation_ok"]) for r in answered)
    out["abstain_unanswerable"] = mean(float(not r["accepted"]) for r in unanswerable)
    out["false_refusal"] = mean(float(not r["accepted"]) for r in answerable)
    out["overall_f1"] = squad2_f1(records)
    out["errors"] = float(sum(1 for r in records if r.get("error")))
    for stage in STAGES:
        times = [
            r["timings_ms"][stage]
            for r in records
            if r.get("timings_ms") and r["timings_ms"].get(stage) is not None
        ]
        out[f"{stage}_p50_ms"] = percentile(times, 50)
        out[f"{stage}_p95_ms"] = percentile(times, 95)
    return out


def by_type(records: Sequence[dict], top_k: int | None = None) -> dict[str, dict]:
    """:func:`summarize` for each question ``type``."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["type"]].append(r)
    return {t: summarize(rs, top_k) for t, rs in sorted(groups.items())}


def squad2_f1(records: Sequence[dict]) -> float | None:
    """Overall F1 over all questions: a refused unanswerable question scores 1, an answered 0."""
    return mean((r["f1"] if r["answerable"] else float(not r["accepted"])) for r in records)
