"""Speed benchmark: index build time and warm ``ask`` latency, printed as medians."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rag.config import PROJECT_ROOT, SEED_CORPUS, Settings

DEFAULT_QUESTIONS = PROJECT_ROOT / "eval" / "questions" / "dev.jsonl"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_questions(path: Path, limit: int | None = None) -> list[str]:
    """The ``question`` field of each line of a JSONL file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["question"] for r in rows][:limit]


def bench_ingest(settings: Settings, repeat: int) -> list[float]:
    """Seconds for full index builds into throw-away folders (model already loaded)."""
    from embeddings.encoder import Encoder
    from rag.store import build_index

    encoder = Encoder(settings.embedding_model, settings.embedding_batch_size)
    encoder.warm_up()
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            build_index(settings.model_copy(update={"index_dir": Path(tmp) / "index"}), encoder)
            times.append(time.perf_counter() - t0)
    return times


def bench_ask(settings: Settings, questions: list[str], repeat: int) -> dict[str, list[float]]:
    """Per-stage milliseconds of ``ask`` over the questions in a warm process."""
    from rag.pipeline import AskPipeline

    pipe = AskPipeline(settings)
    pipe.warm_up()
    for q in questions[:3]:  # warm caches and lazy kernels
        pipe.ask(q)
    stages: dict[str, list[float]] = {"retrieve": [], "read": [], "total": []}
    for _ in range(repeat):
        for q in questions:
            t = pipe.ask(q).timings_ms
            for stage in stages:
                stages[stage].append(getattr(t, stage))
    return stages


def cmd_bench(args: argparse.Namespace) -> int:
    from rag.cli import _settings_from

    settings = _settings_from(args)
    ingest = bench_ingest(settings, args.repeat_ingest)
    questions = load_questions(args.questions, args.limit)
    stages = bench_ask(settings, questions, args.repeat)
    print(f"reader={settings.reader} mode={settings.retrieval_mode} top_k={settings.top_k}")
    print(
        f"ingest {(settings.corpus_dir or SEED_CORPUS).name}/: median {statistics.median(ingest):.2f} s "
        f"over {len(ingest)} builds (model loaded)"
    )
    n = len(stages["total"])
    print(f"ask over {len(questions)} questions x {args.repeat} ({n} calls), milliseconds:")
    print(f"{'stage':<10}{'median':>10}{'p95':>10}")
    for stage, values in stages.items():
        print(f"{stage:<10}{statistics.median(values):>10.1f}{_percentile(values, 0.95):>10.1f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time index builds and warm ask latency")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL file")
    p.add_argument("--limit", type=int, default=None, help="use the first N questions")
    p.add_argument("--repeat", type=int, default=1, help="passes over the questions")
    p.add_argument("--repeat-ingest", type=int, default=3, help="index builds to time")
    p.add_argument("--reader", choices=("span", "sentence"), default=None)
    p.set_defaults(func=cmd_bench)
