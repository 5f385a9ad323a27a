"""The ``verbatim`` command: ingest, ask, search; ``serve``, ``eval`` and ``train-reader`` come
from the packages that implement them, through the ``verbatim.commands`` entry points."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import get_args

from rag.config import (
    ReaderKind,
    RetrievalMode,
    Settings,
    field_bounds,
    get_settings,
    with_overrides,
)

log = logging.getLogger("verbatim")

EXIT_USAGE = 2


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings, with the command line's overrides (``--corpus-dir``, ...) applied."""
    keys = ("corpus_dir", "index_dir", "reader")
    return with_overrides(get_settings(), **{k: getattr(args, k, None) for k in keys})


def _pipeline(args: argparse.Namespace):
    from rag.pipeline import AskPipeline

    return AskPipeline(settings_from(args))


def cmd_ingest(args: argparse.Namespace) -> int:
    """Build or update the index over a corpus folder."""
    from rag.store import prepare_index

    if args.path is not None:
        args.corpus_dir = Path(args.path)
    settings = settings_from(args)
    started = time.perf_counter()
    store = prepare_index(settings, rebuild=args.rebuild)
    print(
        f"index {settings.index_dir}: {len(store.documents)} documents, {len(store.chunks)} "
        f"chunks, generation {store.generation} ({time.perf_counter() - started:.1f} s)"
    )
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """Export the reader (fp32 and int8, beside its weights) and the query encoder to ONNX."""
    from embeddings.encoder import Encoder
    from rag.readers.onnx_backend import export_onnx

    settings = get_settings()
    written = export_onnx(args.model, int8=not args.no_int8)
    written.append(Encoder.from_settings(settings).export_onnx())
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _mark(sentence: str, start: int, end: int) -> str:
    """The sentence with the answer between »« for a terminal."""
    bold, off = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    return f"{sentence[:start]}{bold}»{sentence[start:end]}«{off}{sentence[end:]}"


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question from the documents."""
    answer = _pipeline(args).ask(args.question, mode=args.mode, top_k=args.top_k)
    if args.json:
        print(answer.model_dump_json(indent=2))
        return 0
    if answer.abstained:
        print("Not found in the documents.")
        if answer.alternatives:
            alt = answer.alternatives[0]
            print(
                f"(closest candidate, confidence {answer.score:.2f}: {alt.text!r} in {alt.title!r})"
            )
        return 0
    c = answer.citations[0]
    print(f"Answer: {answer.answer}  (confidence {answer.score:.2f})")
    print(f"Source: {c.title} [{c.doc_id}, characters {c.start}-{c.end}]")
    print(f"  {_mark(c.sentence, c.start - c.sentence_start, c.end - c.sentence_start)}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Print the top passages for a query."""
    passages = _pipeline(args).search(args.query, mode=args.mode, top_k=args.top_k)
    if args.json:
        print(json.dumps([p.model_dump() for p in passages], indent=2, ensure_ascii=False))
        return 0
    for rank, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())
        print(f"{rank}. [{p.score:.4f}] {p.title} ({p.doc_id}:{p.start}-{p.end})")
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
    return 0


def _add_query_options(p: argparse.ArgumentParser) -> None:
    s = get_settings()
    p.add_argument(
        "--mode",
        choices=get_args(RetrievalMode),
        default=None,
        help=f"retrieval mode (default: {s.retrieval_mode})",
    )
    p.add_argument(
        "--top-k",
        type=bounded("top_k"),
        default=None,
        help=f"passages to read (default: {s.top_k})",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    add_reader_option(p)


def add_reader_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reader", choices=get_args(ReaderKind), default=None)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""

    def parse(value: str) -> int:
        n = int(value)
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return n

    parse.__name__ = "count"  # argparse names the type in "invalid count value: 'x'"
    return parse


def bounded(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number within the bounds of the ``Settings`` field ``name``."""
    low, high = field_bounds(name)
    if low is not None and high is not None:
        rule = f"must be between {low} and {high}"
    else:
        rule = f"must be at least {low}" if low is not None else f"must be at most {high}"

    def parse(value: str) -> int:
        n = int(value)
        if (low is not None and n < low) or (high is not None and n > high):
            raise argparse.ArgumentTypeError(rule)
        return n

    parse.__name__ = name  # argparse names the type in "invalid port value: 'x'"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verbatim",
        description="Extractive, cited answers from your documents.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    parser.add_argument(
        "--corpus-dir",
        dest="corpus_dir",
        type=Path,
        default=None,
        help="documents folder (default: seeds/ or VERBATIM_CORPUS_DIR)",
    )
    parser.add_argument(
        "--index-dir",
        dest="index_dir",
        type=Path,
        default=None,
        help="index folder (default: .index/ or VERBATIM_INDEX_DIR)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="build or update the index")
    p.add_argument("path", nargs="?", default=None, help="corpus folder (default: seeds/)")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export-onnx", help="export the reader and the encoder to ONNX Runtime")
    p.add_argument("--model", default=get_settings().reader_model, help="reader folder")
    p.add_argument("--no-int8", action="store_true", help="only the fp32 file")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("ask", help="answer a question")
    p.add_argument("question")
    _add_query_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("search", help="show the top passages for a query")
    p.add_argument("query")
    _add_query_options(p)
    p.set_defaults(func=cmd_search)

    from rag import documents_cli  # add, remove, documents

    documents_cli.register(sub)

    for ep in sorted(entry_points(group="verbatim.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a broken install must not take the other commands down
            print(f"verbatim: command {ep.name!r} is unavailable: {exc}", file=sys.stderr)
            continue
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``verbatim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TQDM_DISABLE", "1") if not sys.stderr.isatty() else None
    from rag.documents import CorpusError
    from rag.pipeline import QuestionError
    from rag.store import IndexLoadError

    try:
        return int(args.func(args) or 0)
    except QuestionError as exc:
        print(f"verbatim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CorpusError, IndexLoadError) as exc:
        print(f"verbatim: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
