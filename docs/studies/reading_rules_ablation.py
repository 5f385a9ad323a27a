"""Ablation of the reading path's rules on held-out SQuAD (issue 14, item 5): each rule switched
off in turn, the same 1,000 questions asked as by `verbatim squad-ask --limit 1000`.

    .venv/bin/python docs/studies/reading_rules_ablation.py [--limit 1000]

A study, not product code: it patches the runtime's functions from outside for one run each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import rag.readers.calibration as calibration
import rag.readers.span as span
from eval.squad_ask import sample, score, summarise
from eval.squad_retrieval import write_corpus
from rag.config import get_settings
from rag.pipeline import AskPipeline


@contextmanager
def patched(module, name: str, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


VARIANTS = {
    "all rules (default)": ({}, []),
    "no trimming": ({}, [(span, "trim_span", lambda text, s, e: (s, e))]),
    "no answer types (type_fit = 0)": ({}, [(calibration, "answer_type_fit", lambda q, a: 0)]),
    "no second read": ({"second_pass_top_k": 0}, []),
    "no passage merging": ({"merge_passages": False}, []),
    "RRF fusion": ({"fusion": "rrf"}, []),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        probes = sample(write_corpus(corpus, base.qa_data_dir, True), args.limit, args.seed)
        settings = base.model_copy(update={"corpus_dir": corpus, "index_dir": Path(tmp) / "i"})
        pipe = AskPipeline(settings)
        pipe.warm_up()
        for name, (updates, patches) in VARIANTS.items():
            asking = pipe.with_settings(**updates) if updates else pipe
            with _all(patches):
                figures = summarise([score(p, asking.ask(p.question)) for p in probes])
            print(f"{name}: {json.dumps(figures)}", flush=True)


@contextmanager
def _all(patches):
    if not patches:
        yield
        return
    module, name, value = patches[0]
    with patched(module, name, value), _all(patches[1:]):
        yield


if __name__ == "__main__":
    main()
