"""Running question sets through configurations, in-process or against a running service.

Each distinct (retrieval mode, reader, top_k) is asked once; abstention thresholds are decided
offline from the recorded scores (``score >= threshold``), so threshold variants and the sweep
cost nothing extra.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from eval import metrics as m
from eval.questions import Question
from rag.config import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

MODES = ("bm25", "dense", "hybrid")
READERS = ("sentence", "span")
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
_ALIASES = {
    "retrieval_mode": "mode",
    "k": "top_k",
    "topk": "top_k",
    "top-k": "top_k",
    "abstain_threshold": "threshold",
    "thr": "threshold",
}


class ConfigError(ValueError):
    """A configuration string or preset is not understood; the message says why."""


class EvalError(RuntimeError):
    """The evaluation cannot go on (service unreachable, index unusable...)."""


class BackendUnavailable(RuntimeError):
    """A configuration cannot run here (e.g. the span reader has no trained model)."""


@dataclass(frozen=True)
class EvalConfig:
    """One configuration; ``None`` means the service's or the settings' default."""

    mode: str | None = None
    reader: str | None = None
    top_k: int | None = None
    threshold: float | None = None

    @property
    def run_key(self) -> tuple[str | None, str | None, int | None]:
        """What needs asking; configurations that differ only in threshold share a run."""
        return (self.mode, self.reader, self.top_k)

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v is not None and k != "threshold"]
        parts.append(f"thr={self.threshold:g}" if self.threshold is not None else "thr=service")
        return ",".join(parts)


def parse_config(spec: str) -> EvalConfig:
    """``"mode=bm25,reader=sentence,top_k=5,threshold=0.4"`` -> :class:`EvalConfig`."""
    values: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        value = value.strip()
        if not sep or not value:
            raise ConfigError(f"config {spec!r}: {item!r} is not KEY=VALUE")
        if key == "mode":
            if value not in MODES:
                raise ConfigError(f"config {spec!r}: mode must be one of {', '.join(MODES)}")
            values[key] = value
        elif key == "reader":
            if value not in READERS:
                raise ConfigError(f"config {spec!r}: reader must be one of {', '.join(READERS)}")
            values[key] = value
        elif key == "top_k":
            if not value.isdigit() or not 1 <= int(value) <= 50:
                raise ConfigError(f"config {spec!r}: top_k must be an integer in 1..50")
            values[key] = int(value)
        elif key == "threshold":
            try:
                thr = float(value)
            except ValueError:
                thr = -1.0
            if not 0.0 <= thr <= 1.0:
                raise ConfigError(f"config {spec!r}: threshold must be a number in [0, 1]")
            values[key] = thr
        else:
            raise ConfigError(
                f"config {spec!r}: unknown key {key!r} (use mode, reader, top_k, threshold)"
            )
    return EvalConfig(**values)


def span_reader_available(settings: Settings) -> str | None:
    """None when the span reader can be built here, else the reason it cannot."""
    try:
        import rag.readers.span  # noqa: F401
    except ImportError as exc:
        return f"the span reader is not installed ({exc})"
    model = Path(settings.reader_model)
    looks_local = model.is_absolute() or settings.reader_model.startswith(".")
    if (model.exists() or looks_local) and not (model / "config.json").is_file():
        return f"no trained reader model in {model}"
    return None  # a trained folder, or a model hub id (tried at warm-up)


def expand_configs(
    specs: Sequence[str], settings: Settings | None, remote: bool = False
) -> list[EvalConfig]:
    """Configurations from ``--configs`` (presets ``default``, ``modes``, ``all``, or KEY=VALUE).

    In-process, unset keys take the settings' values. ``all`` = every retrieval mode x every
    reader available here (the span reader only once its trained model exists); against a
    service the reader is the service's, so ``all`` = every mode.
    """
    configs: list[EvalConfig] = []
    for spec in specs or ["default"]:
        if spec == "default":
            configs.append(EvalConfig())
        elif spec == "modes" or (spec == "all" and remote):
            configs += [EvalConfig(mode=mode) for mode in MODES]
        elif spec == "all":
            assert settings is not None
            readers = ["sentence"] + ([] if span_reader_available(settings) else ["span"])
            configs += [EvalConfig(mode=mo, reader=r) for r in readers for mo in MODES]
        else:
            configs.append(parse_config(spec))
    if remote and any(c.reader for c in configs):
        raise ConfigError("reader= cannot be chosen with --url: the service answers with its own")
    if settings is not None and not remote:
        configs = [
            EvalConfig(
                c.mode or settings.retrieval_mode,
                c.reader or settings.reader,
                c.top_k or settings.top_k,
                c.threshold,
            )
            for c in configs
        ]
    return list(dict.fromkeys(configs))


# -- backends ------------------------------------------------------------------------------
def corpus_dir_of(settings: Settings) -> Path:
    """The corpus folder: the configured one, else the local index's, else the seeds."""
    if settings.corpus_dir is not None:
        return Path(settings.corpus_dir)
    try:
        manifest = json.loads((Path(settings.index_dir) / "manifest.json").read_text("utf-8"))
        if Path(manifest["corpus_dir"]).is_dir():
            return Path(manifest["corpus_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return PROJECT_ROOT / "seeds"


def local_corpus(settings: Settings) -> dict[str, str]:
    """doc_id -> text of the local corpus folder ({} when it cannot be read)."""
    from rag.documents import CorpusError, load_corpus

    folder = corpus_dir_of(settings)
    try:
        return {d.doc_id: d.text for d in load_corpus(folder)}
    except (CorpusError, OSError) as exc:
        log.warning("cannot read the corpus %s: %s", folder, exc)
        return {}


class Backend(Protocol):
    """Something that answers questions with the Answer JSON."""

    def prepare(self, config: EvalConfig) -> None: ...

    def ask(self, question: str, config: EvalConfig) -> dict: ...

    def documents(self, doc_ids: set[str]) -> dict[str, str]: ...


class QuestionFailed(Exception):
    """One question could not be answered (refused input, server error); recorded, not fatal."""


class InProcessBackend:
    """Real :class:`AskPipeline` objects, one per reader, sharing one warm encoder."""

    def __init__(self, settings: Settings, encoder: Any = None):
        self.settings = settings
        self.encoder = encoder
        self._pipelines: dict[str, Any] = {}

    def pipeline(self, reader: str) -> Any:
        from rag.pipeline import AskPipeline

        if reader not in self._pipelines:
            if reader == "span" and (why := span_reader_available(self.settings)):
                raise BackendUnavailable(why)
            pipe = AskPipeline(
                self.settings.model_copy(update={"reader": reader}), encoder=self.encoder
            )
            self._warm_up(pipe, reader)
            self.encoder = pipe.encoder
            self._pipelines[reader] = pipe
        return self._pipelines[reader]

    @staticmethod
    def _warm_up(pipe: Any, reader: str) -> None:
        """Warm a pipeline whose reader may fail to load (no or a broken trained model)."""
        from rag.documents import CorpusError
        from rag.store import IndexLoadError

        try:
            pipe.warm_up()
        except (CorpusError, IndexLoadError):
            raise
        except Exception as exc:  # whatever the model loader raises: this config cannot run
            raise BackendUnavailable(f"the {reader} reader cannot start: {exc}") from exc

    def prepare(self, config: EvalConfig) -> None:
        self.pipeline(config.reader or self.settings.reader)

    def ask(self, question: str, config: EvalConfig) -> dict:
        from rag.pipeline import QuestionError

        pipe = self.pipeline(config.reader or self.settings.reader)
        try:
            return pipe.ask(question, mode=config.mode, top_k=config.top_k).model_dump()
        except QuestionError as exc:
            raise QuestionFailed(str(exc)) from exc

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        """The indexed documents' texts (the local corpus's, before any pipeline is warm)."""
        if self._pipelines:
            pipe = next(iter(self._pipelines.values()))
            return {d.doc_id: d.text for d in pipe.documents}
        return local_corpus(self.settings)


class HttpBackend:
    """A real HTTP client of a running service's ``POST /ask``."""

    def __init__(
        self,
        url: str,
        settings: Settings | None = None,
        timeout: float = 120.0,
        client: Any = None,
    ):
        import httpx

        self.url = url.rstrip("/")
        self.settings = settings
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)
        self._httpx = httpx

    def prepare(self, config: EvalConfig) -> None:
        """Wait (up to the timeout) until ``GET /ready`` says the service is ready."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                status = self.client.get(f"{self.url}/ready").status_code
            except self._httpx.TransportError as exc:
                raise EvalError(f"cannot reach the service at {self.url}: {exc}") from exc
            if status != 503 or time.monotonic() > deadline:
                return
            time.sleep(1.0)

    def ask(self, question: str, config: EvalConfig) -> dict:
        body: dict[str, Any] = {"question": question}
        if config.mode:
            body["mode"] = config.mode
        if config.top_k:
            body["top_k"] = config.top_k
        for attempt in range(4):
            try:
                resp = self.client.post(f"{self.url}/ask", json=body)
            except self._httpx.TransportError as exc:
                raise EvalError(f"cannot reach the service at {self.url}: {exc}") from exc
            if resp.status_code in (429, 503) and attempt < 3:
                time.sleep(0.5 * 2**attempt)
                continue
            break
        if resp.status_code != 200:
            raise QuestionFailed(f"HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError as exc:
            raise QuestionFailed(f"the service sent invalid JSON: {exc}") from exc

    def documents(self, doc_ids: set[str]) -> dict[str, str]:
        """The gold documents' texts from ``GET /documents/{id}``, else the local corpus."""
        texts: dict[str, str] = {}
        try:
            for doc_id in sorted(doc_ids):
                resp = self.client.get(f"{self.url}/documents/{quote(doc_id, safe='/')}")
                if resp.status_code == 404 and resp.headers.get("content-type", "").startswith(
                    "application/json"
                ):
                    continue  # an unknown document: gold_for() warns about it
                resp.raise_for_status()
                texts[doc_id] = resp.json()["text"]
            if texts or not doc_ids:
                return texts
            log.warning("the service knows none of the gold documents; reading them locally")
        except (self._httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("the service does not serve document texts (%s); reading them locally", exc)
        return local_corpus(self.settings) if self.settings else {}

    def close(self) -> None:
        self.client.close()


# -- scoring -------------------------------------------------------------------------------
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
