"""`verbatim train-reader` without an installed entry point (the device gets a bare checkout)."""

import argparse
import sys

from rag.training.cli import register

parser = argparse.ArgumentParser(prog="verbatim")
register(parser.add_subparsers(required=True))
args = parser.parse_args()
sys.exit(args.func(args))
