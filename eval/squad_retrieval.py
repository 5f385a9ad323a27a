"""Retrieval on a corpus Verbatim was not tuned on: the held-out half of SQuAD v2.0 dev.

Each held-out article becomes one document (its title, then its paragraphs); every answerable
question is asked of the whole corpus. A passage hits when it lies inside the question's own
paragraph and contains a reference answer. Prints hit@1, hit@k and MRR@k per strategy:

    verbatim squad-retrieval            # ~5 min on 2 cores (embeds ~1,300 chunks)
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rag.cli import bounded
from rag.config import get_settings
from rag.pipeline import AskPipeline
from rag.training.squad import examples_from_articles, heldout_articles

# (label, retrieval mode, fusion of the hybrid mode)
STRATEGIES = [
    ("dense", "dense", "convex"),
    ("bm25", "bm25", "convex"),
    ("hybrid rrf", "hybrid", "rrf"),
    ("hybrid convex", "hybrid", "convex"),
    ("hybrid scaled", "hybrid", "scaled"),
]


@dataclass(frozen=True)
class Probe:
    question: str
    doc_id: str
    paragraph: str
    answers: tuple[str, ...]  # empty: unanswerable
    article: str = ""  # the SQuAD title


def write_article(folder: Path, index: int, article: dict, digits: int = 3) -> str:
    """A SQuAD article as one text file in ``folder`` (its title, then its paragraphs), named by
    ``index`` in ``digits`` digits and the title; returns the name (its document id)."""
    name = f"{index:0{digits}d}_{re.sub(r'[^A-Za-z0-9]+', '_', article['title'])[:40]}.txt"
    paragraphs = [p["context"] for p in article["paragraphs"]]
    title = article["title"].replace("_", " ")
    (folder / name).write_text("\n\n".join([title, *paragraphs]), encoding="utf-8")
    return name


def write_corpus(folder: Path, data_dir: Path, unanswerable: bool = False) -> list[Probe]:
    """One text file per held-out article in ``folder``; its answerable questions as probes
    (the unanswerable ones too, when asked)."""
    probes: list[Probe] = []
    for i, article in enumerate(heldout_articles(data_dir)):
        name = write_article(folder, i, article)
        for ex in examples_from_articles([article]):
            if ex.answers or unanswerable:
                probes.append(Probe(ex.question, name, ex.context, ex.answers, article["title"]))
    return probes


# Ways a reader names the article a question is about ("according to the Al Jazeera report").
ATTRIBUTIONS = (
    "According to the {title} article, {question}",
    "In the article on {title}, {question}",
    "{question} (from the {title} article)?",
)


def attributed(probes: list[Probe]) -> list[Probe]:
    """Each probe asked naming its article, the templates of :data:`ATTRIBUTIONS` in turn."""
    out = []
    for n, p in enumerate(probes):
        template = ATTRIBUTIONS[n % len(ATTRIBUTIONS)]
        q = p.question.strip()
        if template.startswith("{question}"):
            q = q.rstrip("?").rstrip()
        elif q:
            q = q[0].lower() + q[1:]
        title = p.article.replace("_", " ")
        out.append(replace(p, question=template.format(title=title, question=q)))
    return out


def add_attribute_option(p: argparse.ArgumentParser) -> None:
    """``--attribute``: ask the questions :func:`attributed`."""
    p.add_argument(
        "--attribute",
        action="store_true",
        help="ask each question naming its article ('According to the <title> article, ...')",
    )


def holds_answer(probe: Probe, doc_id: str, text: str) -> bool:
    """Whether a passage (its document and text) lies inside the probe's paragraph and holds
    one of its answers: what counts as a hit."""
    inside = doc_id == probe.doc_id and text in probe.paragraph
    return inside and any(a in text for a in probe.answers)


def first_hit(pipe: AskPipeline, probe: Probe, mode: str, k: int) -> int | None:
    """Rank (1-based) of the first passage inside the probe's paragraph holding an answer."""
    for rank, p in enumerate(pipe.search(probe.question, mode=mode, top_k=k), start=1):  # type: ignore[arg-type]
        if holds_answer(probe, p.doc_id, p.text):
            return rank
    return None


def handler(args: argparse.Namespace) -> int:
    """Run ``verbatim squad-retrieval``: one line of figures per strategy."""
    base = get_settings()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        probes = write_corpus(corpus, base.qa_data_dir)[: args.limit or None]
        if args.attribute:
            probes = attributed(probes)
        k = args.k or base.top_k
        settings = base.model_copy(
            update={"corpus_dir": corpus, "index_dir": Path(tmp) / "index", "merge_passages": False}
        )
        pipe = AskPipeline(settings)
        pipe.warm_up()
        print(f"{len(probes)} questions, {len(pipe.store.chunks)} chunks")  # type: ignore[union-attr]
        print(f"{'strategy':14} hit@1  hit@{k}  mrr@{k}")
        for label, mode, fusion in STRATEGIES:
            fused = pipe.with_settings(fusion=fusion)
            ranks = [first_hit(fused, p, mode, k) for p in probes]
            n = len(ranks)
            h1 = sum(r == 1 for r in ranks) / n
            hk = sum(r is not None for r in ranks) / n
            mrr = sum(1 / r for r in ranks if r) / n
            print(f"{label:14} {h1:.3f}  {hk:.3f}  {mrr:.3f}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``squad-retrieval`` subcommand (the ``verbatim.commands`` entry point)."""
    p = subparsers.add_parser(
        "squad-retrieval",
        help="each retrieval strategy on held-out SQuAD articles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    p.add_argument(
        "--k", type=bounded("top_k"), default=None, help="passages per question (default: top_k)"
    )
    add_attribute_option(p)
    p.set_defaults(func=handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.squad_retrieval``: the same command without the ``verbatim`` front end."""
    from eval.standalone import run

    return run(register, argv)


if __name__ == "__main__":
    sys.exit(main())
