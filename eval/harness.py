"""Running question sets through configurations and scoring them.

Each distinct (retrieval mode, reader, top_k) is asked once; abstention thresholds are decided
offline from the recorded scores (``score >= threshold``), so threshold variants and the sweep
cost nothing extra. Configurations live in :mod:`eval.configs`, where answers come from in
:mod:`eval.backends`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from eval import metrics as m
from eval.backends import Backend, BackendUnavailable, QuestionFailed
from eval.configs import EvalConfig
from eval.questions import Question

SWEEP = [round(i / 100, 2) for i in range(101)]
CITATION_KEYS = (
    "doc_id",
    "start",
    "end",
    "text",
    "sentence",
    "passage_start",
    "passage_end",
    "score",
)


def score_record(
    q: Question, answer: dict | None, gold: m.Gold, wall_ms: float, error: str = ""
) -> dict:
    """One question's raw record: the service's call, its best candidate and retrieval ranks."""
    answer = answer or {}
    passages = answer.get("passages") or []
    abstained = bool(answer.get("abstained", True))
    cites = answer.get("citations") or []
    alts = answer.get("alternatives") or []
    cite = (cites[0] if cites else None) if not abstained else (alts[0] if alts else None)
    candidate = None
    if cite is not None:
        candidate = cite.get("text") or (answer.get("answer") if not abstained else None)
    golds = q.answers if q.answerable else []
    timings = dict(answer.get("timings_ms") or {})
    return {
        "id": q.id,
        "type": q.type,
        "answerable": q.answerable,
        "question": q.question,
        "gold_answers": list(q.answers),
        "accepted_docs": q.accepted_docs,
        "service_answer": answer.get("answer"),
        "abstained": abstained,
        "score": float(answer.get("score") or 0.0),
        "candidate": candidate,
        "citation": None if cite is None else {k: cite.get(k) for k in CITATION_KEYS},
        "cand_em": m.exact_match(candidate, golds) if golds else 0.0,
        "cand_f1": m.token_f1(candidate, golds) if golds else 0.0,
        "cand_citation_ok": m.citation_correct(cite, gold),
        "hit_rank": m.first_hit_rank(passages, gold),
        "doc_rank": m.first_doc_rank(passages, gold.accepted),
        "n_passages": len(passages),
        "passages": [
            {
                "doc_id": p["doc_id"],
                "start": p["start"],
                "end": p["end"],
                "score": p.get("score"),
                "hit": m.passage_hits(p["doc_id"], p["start"], p["end"], p["text"], gold),
            }
            for p in passages
        ],
        "timings_ms": {**timings, "wall": round(wall_ms, 2)} if timings else None,
        "error": error,
    }


@dataclass
class ConfigResult:
    """Metrics, per-type breakdown, threshold sweep and per-question records of a config."""

    config: EvalConfig
    metrics: dict = field(default_factory=dict)
    by_type: dict = field(default_factory=dict)
    sweep: list = field(default_factory=list)
    best_threshold: float | None = None
    records: list = field(default_factory=list)
    skipped: str = ""

    @property
    def label(self) -> str:
        return self.config.label


@dataclass
class EvalResult:
    """Everything one ``verbatim eval`` run measured."""

    questions_file: str
    target: str
    results: list[ConfigResult]
    warnings: list[str] = field(default_factory=list)
    started_at: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "questions_file": self.questions_file,
            "target": self.target,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 2),
            "warnings": self.warnings,
            "metric_definitions": m.__doc__,
            "configs": [
                {
                    "label": r.label,
                    "config": asdict(r.config),
                    "skipped": r.skipped,
                    "metrics": r.metrics,
                    "by_type": r.by_type,
                    "best_threshold": r.best_threshold,
                    "sweep": r.sweep,
                    "records": r.records,
                }
                for r in self.results
            ],
        }


def gold_for(questions: Sequence[Question], documents: dict[str, str]) -> tuple[dict, list[str]]:
    """Each question's :class:`Gold`, and warnings for gold text missing from its document."""
    golds, warnings = {}, []
    for q in questions:
        gold = m.Gold.build(q.accepted_docs, q.answers, q.evidence, documents)
        golds[q.id] = gold
        if not documents or not q.answerable:
            continue
        missing = [d for d in q.accepted_docs if d not in documents]
        if missing:
            warnings.append(f"{q.id}: document(s) {', '.join(missing)} not in the corpus")
        elif q.evidence and not any(gold.evidence_spans.values()):
            warnings.append(f"{q.id}: the evidence does not stand verbatim in {q.doc}")
    return golds, warnings


def run_configs(
    questions: Sequence[Question],
    configs: Sequence[EvalConfig],
    backend: Backend,
    progress: bool = True,
    on_question: Callable[[], None] | None = None,
) -> tuple[list[ConfigResult], list[str]]:
    """Ask every question once per distinct run and score every configuration."""
    from tqdm import tqdm

    runs: dict[tuple, list[dict] | str] = {}
    warnings: list[str] = []
    for cfg in configs:  # warm every model before anything is timed
        if cfg.run_key in runs:
            continue
        try:
            backend.prepare(cfg)
            runs[cfg.run_key] = []
        except BackendUnavailable as exc:
            runs[cfg.run_key] = str(exc)
            warnings.append(f"{cfg.label}: skipped: {exc}")
    documents = backend.documents({d for q in questions for d in q.accepted_docs})
    golds, gold_warnings = gold_for(questions, documents)
    warnings += gold_warnings
    if not documents:
        warnings.append("no document texts: evidence overlaps are judged within passages only")
    for cfg in configs:
        if runs[cfg.run_key] != []:
            continue
        records: list[dict] = []
        runs[cfg.run_key] = records
        for q in tqdm(questions, desc=cfg.label, unit="q", disable=not progress, leave=True):
            answer, error = None, ""
            t0 = time.perf_counter()
            try:
                answer = backend.ask(q.question, cfg)
            except QuestionFailed as exc:
                error = str(exc)
            wall = (time.perf_counter() - t0) * 1000
            records.append(score_record(q, answer, golds[q.id], wall, error))
            if on_question:
                on_question()
    results = []
    for cfg in configs:
        run = runs[cfg.run_key]
        if isinstance(run, str):
            results.append(ConfigResult(cfg, skipped=run))
            continue
        top_k = cfg.top_k or max((r["n_passages"] for r in run), default=None)
        decided = [m.apply_threshold(r, cfg.threshold) for r in run]
        points = m.sweep(run, SWEEP)
        results.append(
            ConfigResult(
                cfg,
                metrics=m.summarize(decided, top_k),
                by_type=m.by_type(decided, top_k),
                sweep=points,
                best_threshold=m.best_threshold(points),
                records=decided,
            )
        )
    return results, warnings
