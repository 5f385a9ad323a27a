"""``verbatim bench``: speed, as medians and p95.

In-process (the default): full index builds with the model loaded, then warm ``ask`` latency per
stage. With ``--url``: ``POST /ask`` latency against a running service, ``--concurrency``
requests at a time, beside the service's own ``timings_ms.total``. With ``--url`` and
``--clients 1,8,32``: a load test, each count of closed-loop clients in turn for ``--seconds``
(answers/s, p50/p95/p99 of the 200s, status counts, the server's RSS; a markdown table at the end).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, get_args

from eval.bench_load import client_counts, duration, run_load, warmup_duration
from eval.metrics import percentile
from eval.questions import DEV_QUESTIONS, QuestionFileError, load_questions
from rag.cli import at_least
from rag.config import ReaderKind, Settings, get_settings, with_overrides

EXIT_FAIL, EXIT_USAGE = 1, 2


# -- in-process ------------------------------------------------------------------------------
def bench_ingest(settings: Settings, repeat: int) -> list[float]:
    """Seconds for full index builds of the corpus into throw-away folders (model loaded)."""
    from embeddings.encoder import Encoder
    from rag.store import corpus_of, open_index

    encoder = Encoder.from_settings(settings)
    encoder.warm_up()
    corpus = corpus_of(settings)
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            scratch = settings.model_copy(
                update={"corpus_dir": corpus, "index_dir": Path(tmp) / "index"}
            )
            t0 = time.perf_counter()
            open_index(scratch, encoder)
            times.append(time.perf_counter() - t0)
    return times


def bench_ask(
    settings: Settings, questions: list[str], repeat: int, warmup: int
) -> dict[str, list[float]]:
    """Per-stage milliseconds of ``ask`` over the questions in a warm process."""
    from rag.pipeline import AskPipeline

    pipe = AskPipeline(settings)
    pipe.warm_up()
    for q in questions[:warmup]:  # warm caches and lazy kernels
        pipe.ask(q)
    stages: dict[str, list[float]] = {"retrieve": [], "read": [], "total": []}
    for _ in range(repeat):
        for q in questions:
            t = pipe.ask(q).timings_ms
            for stage in stages:
                stages[stage].append(getattr(t, stage))
    return stages


def bench_haystack(
    settings: Settings, questions: list[str], repeat: int, warmup: int
) -> dict[str, list[float]]:
    """Per-stage milliseconds of the plain Haystack pipeline (``verbatim eval --compare
    haystack``'s) over the same questions, one at a time, in this process."""
    from eval.configs import EvalConfig
    from eval.haystack_backend import HaystackBackend

    backend = HaystackBackend(settings)
    backend.warm_up()
    config = EvalConfig()
    for q in questions[:warmup]:
        backend.ask(q, config)
    stages: dict[str, list[float]] = {"retrieve": [], "read": [], "total": []}
    for _ in range(repeat):
        for q in questions:
            timings = backend.ask(q, config)["timings_ms"]
            for stage in stages:
                stages[stage].append(timings[stage])
    return stages


def print_ratio(ours: list[float], label: str, haystack: dict[str, list[float]]) -> None:
    """Haystack's single-client latency beside ours, and the ratio of the medians."""
    theirs = haystack["total"]
    print(
        f"haystack (in-process, one at a time) total ms: median {statistics.median(theirs):.1f}"
        f"  p95 {percentile(theirs, 95):.1f}  (retrieve {statistics.median(haystack['retrieve']):.1f},"
        f" read {statistics.median(haystack['read']):.1f})"
    )
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"verbatim {label} median {statistics.median(ours):.1f} ms: {ratio:.1f}x faster")


def run_in_process(settings: Settings, questions: list[str], args: argparse.Namespace) -> int:
    from rag.store import corpus_of

    ingest = bench_ingest(settings, args.repeat_ingest)
    stages = bench_ask(settings, questions, args.repeat, args.warmup)
    print(f"reader={settings.reader} mode={settings.retrieval_mode} top_k={settings.top_k}")
    print(
        f"ingest {corpus_of(settings).name}/: median {statistics.median(ingest):.2f} s "
        f"over {len(ingest)} builds (model loaded)"
    )
    n = len(stages["total"])
    print(f"ask over {len(questions)} questions x {args.repeat} ({n} calls), milliseconds:")
    print(f"{'stage':<10}{'median':>10}{'p95':>10}")
    for stage, values in stages.items():
        print(f"{stage:<10}{statistics.median(values):>10.1f}{percentile(values, 95):>10.1f}")
    if args.compare:
        print_ratio(stages["total"], "in-process", bench_haystack(settings, questions, 1, 3))
    return 0


# -- against a live service ------------------------------------------------------------------
def timed_ask(client: Any, url: str, question: str) -> tuple[float, dict | None]:
    """Seconds for one POST /ask, and the answer (None on an HTTP error)."""
    started = time.perf_counter()
    response = client.post(f"{url}/ask", json={"question": question})
    elapsed = time.perf_counter() - started
    return elapsed, response.json() if response.status_code == 200 else None


def run_live(url: str, questions: list[str], args: argparse.Namespace) -> int:
    """Exit 0 when every request got a 200, else 1."""
    import httpx

    url = url.rstrip("/")
    asked = questions * args.repeat
    with httpx.Client(timeout=args.timeout) as client:
        try:
            for question in questions[: args.warmup]:
                timed_ask(client, url, question)
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                results = list(pool.map(lambda q: timed_ask(client, url, q), asked))
        except httpx.TransportError as exc:
            print(f"verbatim bench: cannot reach the service at {url}: {exc}", file=sys.stderr)
            return EXIT_FAIL
    ms = [seconds * 1000 for seconds, _ in results]
    answers = [a for _, a in results if a is not None]
    server = [a["timings_ms"]["total"] for a in answers]
    print(f"POST /ask x {len(ms)} (concurrency {args.concurrency}) against {url}")
    print(
        f"  client latency ms: median {statistics.median(ms):.1f}  p95 {percentile(ms, 95):.1f}"
        f"  min {min(ms):.1f}  max {max(ms):.1f}"
    )
    if server:
        print(
            f"  server total ms:   median {statistics.median(server):.1f}"
            f"  p95 {percentile(server, 95):.1f}"
        )
    abstained = sum(a["abstained"] for a in answers)
    print(
        f"  {len(answers)} answered with 200 ({abstained} abstentions), "
        f"{len(ms) - len(answers)} errors"
    )
    return 0 if len(answers) == len(ms) else EXIT_FAIL


# -- the command -----------------------------------------------------------------------------
def handler(args: argparse.Namespace) -> int:
    """Run ``verbatim bench``; the exit status."""
    if args.url and args.reader:
        print("verbatim bench: --reader cannot be chosen with --url", file=sys.stderr)
        return EXIT_USAGE
    try:
        questions = [q.question for q in load_questions(args.questions)][: args.limit]
    except QuestionFileError as exc:
        print(f"verbatim bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.clients and args.concurrency:
        print("verbatim bench: --clients and --concurrency exclude each other", file=sys.stderr)
        return EXIT_USAGE
    if (args.clients or args.server_pid) and not args.url:
        print("verbatim bench: --clients and --server-pid need --url", file=sys.stderr)
        return EXIT_USAGE
    if args.compare:
        try:
            import eval.haystack_backend  # noqa: F401
        except ImportError:
            print(
                "verbatim bench: --compare haystack needs the compare extra: "
                "pip install -e '.[compare]'",
                file=sys.stderr,
            )
            return EXIT_USAGE
    if args.url and args.clients:
        runs: list = []
        status = run_load(args.url, questions, args, runs)
        single = next((r for r in runs if r.clients == 1 and r.latencies_ms), None)
        if args.compare and single is not None:
            haystack = bench_haystack(get_settings(), questions, 1, 3)
            print_ratio(single.latencies_ms, "over HTTP, 1 client,", haystack)
        return status
    if args.url:
        args.concurrency = args.concurrency or 1
        return run_live(args.url, questions, args)
    settings = with_overrides(
        get_settings(),
        corpus_dir=getattr(args, "corpus_dir", None),
        index_dir=getattr(args, "index_dir", None),
        reader=args.reader,
    )
    return run_in_process(settings, questions, args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand (the ``verbatim.commands`` entry point)."""
    p = subparsers.add_parser(
        "bench",
        help="time index builds and warm ask latency, or POST /ask against a server (--url)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--questions", type=Path, default=DEV_QUESTIONS, help="JSONL question set")
    p.add_argument("--limit", type=at_least(1), default=None, help="use the first N questions")
    p.add_argument("--repeat", type=at_least(1), default=1, help="passes over the questions")
    p.add_argument("--warmup", type=int, default=3, help="untimed questions asked first")
    p.add_argument(
        "--repeat-ingest", type=at_least(1), default=3, help="index builds to time (in-process)"
    )
    p.add_argument("--reader", choices=get_args(ReaderKind), default=None, help="(in-process)")
    p.add_argument("--url", default=None, help="time POST URL/ask of a running service instead")
    p.add_argument(
        "--concurrency", type=at_least(1), default=None, help="requests at a time (with --url)"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout (s, with --url)")
    p.add_argument(
        "--clients",
        type=client_counts,
        default=None,
        help="load test: closed-loop client counts run in turn, e.g. 1,8,32 (with --url)",
    )
    p.add_argument(
        "--seconds", type=duration, default=30.0, help="measured seconds per client count"
    )
    p.add_argument(
        "--warmup-seconds",
        type=warmup_duration,
        default=2.0,
        help="unmeasured load before each count",
    )
    p.add_argument(
        "--server-pid", type=at_least(1), default=None, help="read the server's RSS from /proc"
    )
    p.add_argument(
        "--compare",
        choices=["haystack"],
        default=None,
        help="also time the plain Haystack pipeline on the same questions, one at a time, and "
        "print the single-client ratio (in-process, or with --url --clients 1,...; needs the "
        "compare extra)",
    )
    p.set_defaults(func=handler)
