"""The whole ask pipeline on held-out SQuAD articles, answerable and unanswerable questions.

The corpus is every article of the held-out half of SQuAD v2.0 dev, one document each (as in
:mod:`eval.squad_retrieval`). The questions come from the articles the reader's calibration was
not fitted on (``rag.training.squad.fit_titles``: every second sorted title): answerable
ones, and SQuAD v2's adversarial unanswerable ones, whose article is in the corpus with a
plausible wrong answer. Each value of ``second_pass_top_k`` gets one run, so the second read's
gain (answers found deeper) and its cost (unanswerable questions it answers) can be weighed:

    verbatim squad-ask --limit 1000          # ~8 min on 2 cores (embeds ~1,300 chunks)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import percentile
from eval.squad_retrieval import Probe, add_attribute_option, attributed, write_corpus
from rag.answer import Answer
from rag.cli import bounded
from rag.config import Settings, get_settings
from rag.pipeline import AskPipeline
from rag.training.squad import exact_match, fit_titles, token_f1

NOANS_SHARE = 0.2  # of questions in use, as the calibration assumes


@dataclass
class Outcome:
    """One question's answer, scored."""

    answerable: bool
    answered: bool
    em: float
    f1: float
    right_doc: bool  # the citation names the question's own article
    ms: float


def score(probe: Probe, answer: Answer) -> Outcome:
    """EM and F1 of the answer (a refusal: 1 for an unanswerable question, else 0)."""
    answered = not answer.abstained and answer.answer is not None
    golds = list(probe.answers)
    text = answer.answer if answered else ""
    return Outcome(
        bool(golds),
        answered,
        exact_match(text, golds),
        token_f1(text, golds),
        answered and answer.citations[0].doc_id == probe.doc_id,
        answer.timings_ms.total,
    )


def summarise(outcomes: list[Outcome]) -> dict[str, float]:
    """Answerable EM/F1 and refusals, unanswerable refusals, F1 at 20 % unanswerable, latency."""
    has = [o for o in outcomes if o.answerable]
    no = [o for o in outcomes if not o.answerable]

    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4) if values else float("nan")

    has_f1 = mean([o.f1 for o in has])
    no_refused = mean([float(not o.answered) for o in no])
    answered = [o for o in has if o.answered]
    ms = [o.ms for o in outcomes]
    p95 = percentile(ms, 95)
    return {
        "answerable": len(has),
        "unanswerable": len(no),
        "has_ans_em": mean([o.em for o in has]),
        "has_ans_f1": has_f1,
        "answerable_refused": mean([float(not o.answered) for o in has]),
        "right_document": mean([float(o.right_doc) for o in answered]),
        "unanswerable_refused": no_refused,
        "f1_at_20pct_unanswerable": round((1 - NOANS_SHARE) * has_f1 + NOANS_SHARE * no_refused, 4),
        "median_ms": round(statistics.median(ms), 1) if ms else float("nan"),
        "p95_ms": round(p95, 1) if p95 is not None else float("nan"),
    }


def evaluate(pipe: AskPipeline, probes: list[Probe], second_pass: list[int]) -> dict[int, dict]:
    """:func:`summarise` of every probe asked of ``pipe`` under each ``second_pass_top_k``."""
    out: dict[int, dict] = {}
    for value in second_pass:
        asking = pipe.with_settings(second_pass_top_k=value)
        out[value] = summarise([score(p, asking.ask(p.question)) for p in probes])
    return out


def sample(probes: list[Probe], limit: int, seed: int) -> list[Probe]:
    """``limit`` random probes (0: all) of the articles the calibration was not fitted on."""
    fitted = fit_titles(p.article for p in probes)
    chosen = [p for p in probes if p.article not in fitted]
    random.Random(seed).shuffle(chosen)
    return chosen[:limit] if limit else chosen


@contextmanager
def held_out_pipeline(
    base: Settings, limit: int, seed: int, attribute: bool = False, **updates: object
) -> Iterator[tuple[AskPipeline, list[Probe]]]:
    """A warm pipeline over the held-out articles (in a temporary folder, gone on exit) and
    the :func:`sample` of their questions; ``updates``: other settings for the pipeline."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        probes = sample(write_corpus(corpus, base.qa_data_dir, unanswerable=True), limit, seed)
        if attribute:
            probes = attributed(probes)
        update = {"corpus_dir": corpus, "index_dir": Path(tmp) / "index", **updates}
        pipe = AskPipeline(base.model_copy(update=update))
        pipe.warm_up()
        yield pipe, probes


def handler(args: argparse.Namespace) -> int:
    """Run ``verbatim squad-ask``: one line of figures per value of ``second_pass_top_k``."""
    base = get_settings()
    with held_out_pipeline(base, args.limit, args.seed, args.attribute) as (pipe, probes):
        chunks = len(pipe.store.chunks)  # type: ignore[union-attr]
        print(
            f"{len(probes)} questions of {len({p.article for p in probes})} articles, {chunks} chunks"
        )
        compared = args.second_pass or [0, base.second_pass_top_k]  # without, then with
        report = evaluate(pipe, probes, compared)
    for value, figures in report.items():
        print(f"second_pass_top_k={value}: " + json.dumps(figures))
    return 0


def _second_pass_values(text: str) -> list[int]:
    """``"0,7"`` -> ``[0, 7]``, each within the bounds of ``second_pass_top_k``."""
    parts = [v.strip() for v in text.split(",") if v.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("wants integers, e.g. 0,7")
    return [bounded("second_pass_top_k")(v) for v in parts]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``squad-ask`` subcommand (the ``verbatim.commands`` entry point)."""
    p = subparsers.add_parser(
        "squad-ask",
        help="the whole ask on held-out SQuAD, with and without the second read",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--limit", type=int, default=1000, help="questions to ask (0: all)")
    p.add_argument("--seed", type=int, default=7, help="of the question sample")
    p.add_argument(
        "--second-pass",
        type=_second_pass_values,
        default=None,
        help="values of second_pass_top_k to compare (comma list; default: 0 and the setting)",
    )
    add_attribute_option(p)
    p.set_defaults(func=handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.squad_ask``: the same command without the ``verbatim`` front end."""
    from eval.standalone import run

    return run(register, argv)


if __name__ == "__main__":
    sys.exit(main())
