"""``verbatim eval``: score question sets over configurations; report, plots and CI floors.

Exit status: 0 all good; 1 a ``--fail-under`` floor was missed, a configuration could not run or
the service could not be reached; 2 a usage error (bad question file, config or floor).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.backends import Backend, EvalError, HttpBackend, InProcessBackend
from eval.configs import ConfigError, expand_configs
from eval.floors import missed_floors, parse_floor
from eval.harness import ConfigResult, EvalResult, run_configs
from eval.metrics import summarize
from eval.questions import DEV_QUESTIONS, QuestionFileError, load_questions
from rag.config import Settings, get_settings

EXIT_FAIL, EXIT_USAGE = 1, 2
METRICS = sorted(summarize([]))
# Systems ``--compare`` can put beside Verbatim (each an optional extra).
COMPARE = ("haystack",)
NO_ANSWER = ("on", "off", "both")


def parse_floors(items: list[str] | None) -> dict[str, float]:
    """``["f1=0.5", "hit@5=0.8"]`` -> ``{"f1": 0.5, "hit@5": 0.8}``; ConfigError if invalid."""
    try:
        return dict(parse_floor(item, METRICS) for item in items or [])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_floors(results: list[ConfigResult], floors: dict[str, float]) -> list[str]:
    """One message per configuration and metric under its floor (or not measured)."""
    return [
        message
        for r in results
        if not r.skipped
        for message in missed_floors(r.label, r.metrics, floors)
    ]


def _settings(args: argparse.Namespace) -> Settings:
    updates = {
        k: getattr(args, k)
        for k in ("corpus_dir", "index_dir")
        if getattr(args, k, None) is not None
    }
    settings = get_settings()
    return settings.model_copy(update=updates) if updates else settings


def handler(args: argparse.Namespace) -> int:
    """Run ``verbatim eval``; the exit status."""
    from eval.report import comparison_table, write_all
    from rag.documents import CorpusError
    from rag.store import IndexLoadError, corpus_of

    def fail(msg: str, code: int) -> int:
        print(f"verbatim eval: {msg}", file=sys.stderr)
        return code

    settings = _settings(args)
    try:
        questions = load_questions(args.questions)
        floors = parse_floors(args.fail_under)
        configs = expand_configs(args.configs, None if args.url else settings, bool(args.url))
    except (QuestionFileError, ConfigError) as exc:
        return fail(str(exc), EXIT_USAGE)
    if args.limit:
        questions = questions[: args.limit]
    if args.url:
        verbatim = HttpBackend(args.url, settings, timeout=args.timeout)
        target = f"service at {args.url}"
    else:
        verbatim = InProcessBackend(settings)
        target = f"in-process (index {settings.index_dir}, corpus {corpus_of(settings)})"
    backend: Backend = verbatim
    compared: list = []  # the other system's rows: reported, never gated by --fail-under
    if args.compare:
        try:
            from eval.haystack_backend import CompareBackend, HaystackBackend, compare_configs
        except ImportError as exc:
            msg = f"--compare {args.compare} needs the optional extra: pip install -e '.[compare]'"
            return fail(f"{msg} ({exc})", EXIT_USAGE)
        reader = str(args.compare_reader or settings.reader_model)
        if not (Path(reader) / "config.json").is_file():
            return fail(f"--compare-reader: no reader model in {reader}", EXIT_USAGE)
        haystack = HaystackBackend(settings, reader)
        backend = CompareBackend(verbatim, haystack)
        compared = compare_configs(reader, args.compare_no_answer)
        configs += compared
        target += f"; beside it {haystack.describe()}, corpus {corpus_of(settings)}"
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    try:
        results, warnings = run_configs(questions, configs, backend, progress=not args.quiet)
    except (EvalError, CorpusError, IndexLoadError) as exc:
        return fail(str(exc), EXIT_FAIL)
    finally:
        if isinstance(verbatim, HttpBackend):
            verbatim.close()
    result = EvalResult(
        str(args.questions), target, results, warnings, started, time.perf_counter() - t0
    )
    paths = write_all(result, Path(args.out))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(comparison_table(results))
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    code = 0
    if any(r.skipped for r in results):
        code = fail("some configurations could not run (see warnings)", EXIT_FAIL)
    failures = check_floors([r for r in results if r.config not in compared], floors)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return EXIT_FAIL if failures else code


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``eval`` options."""
    p.add_argument("--questions", type=Path, default=DEV_QUESTIONS, help="JSONL question set")
    p.add_argument("--out", type=Path, default=Path("eval/out"), help="output folder")
    p.add_argument("--url", default=None, help="evaluate a running service (POST URL/ask)")
    p.add_argument(
        "--configs",
        nargs="+",
        default=["default"],
        metavar="CONFIG",
        help="KEY=VALUE,... with keys mode, reader, top_k, threshold; or a preset: "
        "default, modes, all (every mode x every available reader)",
    )
    p.add_argument(
        "--fail-under",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help=f"exit 1 when a configuration's metric is below VALUE (repeatable): {', '.join(METRICS)}",
    )
    p.add_argument(
        "--compare",
        choices=COMPARE,
        default=None,
        help="also run the question set through a plain Haystack 3.4 pipeline (issue 14's) and "
        "report both; needs pip install -e '.[compare]'",
    )
    p.add_argument(
        "--compare-reader",
        type=Path,
        default=None,
        metavar="PATH",
        help="the reader folder of the compared pipeline (default: the settings' reader_model)",
    )
    p.add_argument(
        "--compare-no-answer",
        choices=NO_ANSWER,
        default="both",
        help="Haystack's no-answer: on (it may abstain), off (answer everything), or both rows",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--timeout", type=float, default=120.0, help="HTTP timeout per question (s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand (the ``verbatim.commands`` entry point)."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate answers, citations and retrieval",
        description="Ask a question set under one or more configurations and write "
        "results.json, report.md and plots. hit@k is reported for k <= the configuration's "
        "top_k (add e.g. 'mode=hybrid,top_k=10' for hit@10). Without threshold= the service's "
        "own abstention counts; threshold=X re-decides offline: an answer stands iff its "
        "score >= X.",
    )
    add_arguments(p)
    p.set_defaults(func=handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.cli``: the same command without the ``verbatim`` front end."""
    parser = argparse.ArgumentParser(prog="verbatim eval", description=__doc__)
    parser.add_argument("--corpus-dir", dest="corpus_dir", type=Path, default=None)
    parser.add_argument("--index-dir", dest="index_dir", type=Path, default=None)
    add_arguments(parser)
    return handler(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
