"""One ``verbatim`` subcommand run on its own (``python -m eval.squad_ask``): its parser is built
by the same ``register`` as under ``verbatim``, so no option or default is written twice."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def run(register: Callable[[argparse._SubParsersAction], None], argv: list[str] | None) -> int:
    """Parse ``argv`` (default: the command line) as the one subcommand ``register`` adds, and
    run it; its exit status."""
    parser = argparse.ArgumentParser(prog="verbatim")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    (name,) = sub.choices
    args = parser.parse_args([name, *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)
