"""``verbatim bench-scale``: what ingest, load, retrieval, asking and one more document cost as
the corpus grows, per size of corpus in chunks (``--chunks 10000,100000``).

Each size gets its own corpus folder and store under ``--work-dir`` (see
:mod:`eval.scale_corpus` for what the corpus holds); a store is started as a copy of the largest
smaller one there, and a rerun embeds only what the store lacks. Per size, one row of:
ingest seconds and chunks/s (this run's embedding only) and peak RSS; the store's size on disk;
``IndexStore.load`` seconds and RSS in a fresh process, twice (the first may build an approximate
index and keep it: the second is what a restart costs); retrieval (hybrid, k=20) and whole-ask
latency over the planted held-out SQuAD questions, and the asked ones' EM and F1 (a refusal
scores 0: every planted question is answerable); dense recall@10 of ``--index-kind`` against
exact search; hit@5 of hybrid, dense and BM25 retrieval over every planted question (a passage
inside the question's paragraph holding an answer among the first five), with lexical evidence
on or off as the settings have it at that size; and the cost
of adding one ``--add-pages`` document (``Library.add``, then ``IndexStore.refresh``) and of
removing it again:

    verbatim bench-scale --chunks 1000,10000 --add-pages 20 --json eval/out/scale.json

``--fail-under hit@5=0.55`` (repeatable; :data:`FLOORS`) exits 1 when a size's figure is under its
floor: how ``make test`` runs the 10,000-chunk size.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import get_args

import numpy as np

from embeddings.encoder import Encoder
from embeddings.vector_index import VectorIndex
from eval.floors import missed_floors, parse_floor
from eval.metrics import percentile
from eval.scale_corpus import (
    SEED,
    ChunkCounter,
    CorpusSource,
    QADataMissing,
    ScaleCorpus,
    plan_corpus,
    write_folder,
)
from eval.scale_store import build_store, cold_load
from eval.squad_ask import score
from eval.squad_retrieval import first_hit
from rag.cli import at_least
from rag.config import PROJECT_ROOT, IndexChoice, Settings, get_settings
from rag.docstore import FILENAME
from rag.library import Library
from rag.pipeline import AskPipeline, QuestionError, make_reader
from rag.store import index_kind_for

EXIT_FAIL, EXIT_USAGE = 1, 2
COLUMNS = [
    ("chunks", "chunks"),
    ("documents", "docs"),
    ("kind", "index"),
    ("evidence", "lexical evidence"),
    ("ingest_s", "ingest s"),
    ("chunks_per_s", "chunks/s"),
    ("ingest_peak_rss_mb", "ingest peak RSS MB"),
    ("ingest_rss_growth_mb", "ingest RSS growth MB"),
    ("store_mb", "store MB"),
    ("load_s", "load s"),
    ("load_rss_mb", "load RSS MB"),
    ("kept_load_s", "kept load s"),
    ("kept_load_rss_mb", "kept load RSS MB"),
    ("startup_s", "pipeline start s"),
    ("retrieve_ms", "retrieve p50/p95 ms"),
    ("ask_ms", "ask p50/p95 ms"),
    ("ask_em_f1", "ask EM/F1"),
    ("recall_at_10", "recall@10"),
    ("hit_at_5", "hit@5"),
    ("hit_at_5_dense", "hit@5 dense"),
    ("hit_at_5_bm25", "hit@5 BM25"),
    ("add_s", "add doc s"),
    ("add_refresh_ms", "add refresh ms"),
    ("remove_ms", "remove ms"),
    ("remove_refresh_ms", "remove refresh ms"),
]


# What --fail-under can hold a size to: its row's figure (None: not measured).
FLOORS = {
    "hit@5": lambda row: row.get("hit_at_5"),
    "recall@10": lambda row: row.get("recall_at_10"),
    "ask_f1": lambda row: (row.get("ask_em_f1") or [None, None])[1],
}


def floor(value: str) -> tuple[str, float]:
    """An argparse type: ``METRIC=VALUE`` with a metric of :data:`FLOORS`."""
    try:
        return parse_floor(value, FLOORS)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def missed_size_floors(rows: list[dict], floors: list[tuple[str, float]]) -> list[str]:
    """One message per size and floor its figure is under (or did not measure)."""
    return [
        message
        for row in rows
        for message in missed_floors(
            f"{row['chunks']:,} chunks", {n: f(row) for n, f in FLOORS.items()}, dict(floors)
        )
    ]


def _p50_p95(values: list[float]) -> list[float]:
    return [round(statistics.median(values), 1), round(percentile(values, 95), 1)]


def recall_at_10(pipe: AskPipeline, questions: list[str], kind: str) -> float:
    """Mean overlap of the dense top 10 of the index with exact (flat) search's."""
    if kind == "flat" or not questions:
        return 1.0
    assert pipe.store is not None
    stored = list(pipe.store.docstore.chunks())
    exact = VectorIndex.build(
        np.stack([s.vector for s in stored]), "flat", np.array([s.id for s in stored])
    )
    del stored
    queries = pipe.encoder.encode_queries(questions)
    _, approx_ids = pipe.store.vectors.search(queries, 10)
    _, exact_ids = exact.search(queries, 10)
    overlaps = [
        len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum()))
        for a, e in zip(approx_ids, exact_ids, strict=True)
    ]
    return round(float(np.mean(overlaps)), 4)


def add_and_remove(pipe: AskPipeline, settings: Settings, source: CorpusSource, pages: int) -> dict:
    """Seconds to add one ``pages``-page document and to remove it, and the refreshes after."""
    doc = source.added_document(pages)
    library = Library.from_settings(settings, pipe.encoder)
    started = time.perf_counter()
    (change,) = library.add([(doc, doc.doc_id)], origin="upload")
    added = time.perf_counter()
    pipe.refresh()
    refreshed = time.perf_counter()
    library.remove([doc.doc_id])
    removed = time.perf_counter()
    pipe.refresh()
    done = time.perf_counter()
    return {
        "add_pages": pages,
        "add_chars": len(doc.text),
        "add_chunks": change.chunks,
        "add_s": round(added - started, 2),
        "add_refresh_ms": round(1000 * (refreshed - added), 1),
        "remove_ms": round(1000 * (removed - refreshed), 1),
        "remove_refresh_ms": round(1000 * (done - removed), 1),
    }


def measure(pipe: AskPipeline, corpus: ScaleCorpus, args: argparse.Namespace, kind: str) -> dict:
    """Retrieval and ask latency and recall@10 over a sample of the planted questions; hit@5 of
    each retrieval mode over all of them (a sample is too noisy to compare sizes by)."""
    assert pipe.retriever is not None
    probes = list(corpus.probes)
    random.Random(args.seed).shuffle(probes)
    searched = probes[: args.search_questions]
    retrieve_ms = []
    for probe in searched:
        try:
            started = time.perf_counter()
            pipe.retriever.search(probe.question, 20, "hybrid")
            retrieve_ms.append(1000 * (time.perf_counter() - started))
        except QuestionError:
            continue
    plain = pipe.with_settings(merge_passages=False)  # a passage is a chunk (squad-retrieval)
    hit_at_5 = {mode: _hit_at_5(plain, probes, mode) for mode in ("hybrid", "dense", "bm25")}
    asked = probes[: args.questions]
    for probe in asked[:3]:  # warm lazy kernels
        pipe.ask(probe.question)
    ask_ms, em, f1 = [], [], []
    for probe in asked:
        started = time.perf_counter()
        answer = pipe.ask(probe.question)
        ask_ms.append(1000 * (time.perf_counter() - started))
        outcome = score(probe, answer)
        em.append(outcome.em)
        f1.append(outcome.f1)
    return {
        "planted_questions": len(probes),
        "searched_questions": len(retrieve_ms),
        "asked_questions": len(ask_ms),
        "retrieve_ms": _p50_p95(retrieve_ms) if retrieve_ms else None,
        "ask_ms": _p50_p95(ask_ms) if ask_ms else None,
        "ask_em_f1": [round(statistics.fmean(v), 4) for v in (em, f1)] if ask_ms else None,
        "recall_at_10": recall_at_10(pipe, [p.question for p in searched], kind),
        "hit_at_5": hit_at_5["hybrid"],
        "hit_at_5_dense": hit_at_5["dense"],
        "hit_at_5_bm25": hit_at_5["bm25"],
    }


def _hit_at_5(pipe: AskPipeline, probes: list, mode: str) -> float | None:
    """Share of the probes with a passage of their paragraph holding an answer in the top 5."""
    hits = []
    for probe in probes:
        try:
            hits.append(first_hit(pipe, probe, mode, 5) is not None)
        except QuestionError:
            continue
    return round(sum(hits) / len(hits), 4) if hits else None


def _store_mb(index_dir: Path) -> float:
    """The store's size on disk, its write-ahead log checkpointed into the file first."""
    conn = sqlite3.connect(index_dir / FILENAME)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return round(sum(p.stat().st_size for p in index_dir.glob(f"{FILENAME}*")) / 1e6, 1)


def bench_size(n: int, source: CorpusSource, encoder: Encoder, reader, args, base: Settings):
    """One row of the table: the corpus of about ``n`` chunks built, loaded and asked."""
    work: Path = args.work_dir
    count = ChunkCounter(encoder.count_tokens, base.chunk_tokens, base.chunk_overlap_tokens)
    print(f"bench-scale {n:,} chunks: planning and writing the corpus", file=sys.stderr)
    corpus = plan_corpus(source, n, count)
    folder, index_dir = work / f"corpus-{n}", work / f"store-{n}"
    write_folder(folder, corpus.docs)
    settings = base.model_copy(
        update={"corpus_dir": folder, "index_dir": index_dir, "index_kind": args.index_kind}
    )
    kind = index_kind_for(settings, corpus.chunks)
    row: dict = {"n": n, "chunks": corpus.chunks, "documents": len(corpus.docs), "kind": kind}
    row.update(build_store(settings, encoder, corpus, work, n))
    row["store_mb"] = _store_mb(index_dir)
    print(f"bench-scale {n:,} chunks: loading in a fresh process", file=sys.stderr)
    load = cold_load(index_dir, kind)
    row.update(load_s=round(load["load_s"], 2), load_rss_mb=round(load["rss_mb"] or 0, 1))
    kept = cold_load(index_dir, kind)  # a first load may build the approximate index and keep it
    row.update(kept_load_s=round(kept["load_s"], 2), kept_load_rss_mb=round(kept["rss_mb"] or 0, 1))
    row["load_import_s"] = round(load["import_s"], 2)
    pipe = AskPipeline(settings, encoder=encoder, reader=reader)
    started = time.perf_counter()
    pipe.warm_up()
    row["startup_s"] = round(time.perf_counter() - started, 2)
    assert pipe.retriever is not None
    row["evidence"] = "on" if pipe.retriever.evidence_on() else "off"
    print(f"bench-scale {n:,} chunks: searching and asking", file=sys.stderr)
    row.update(measure(pipe, corpus, args, kind))
    if args.add_pages:
        row.update(add_and_remove(pipe, settings, source, args.add_pages))
    return row


# -- output ----------------------------------------------------------------------------------
def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return " / ".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.4g}" if value < 10 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict]) -> str:
    """The rows as a markdown table (columns of :data:`COLUMNS` that some row has)."""
    columns = [(key, label) for key, label in COLUMNS if any(key in r for r in rows)]
    lines = [
        "| " + " | ".join(label for _, label in columns) + " |",
        "|" + "|".join("---:" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


# -- the command -----------------------------------------------------------------------------
def handler(args: argparse.Namespace) -> int:
    """Run ``verbatim bench-scale``; the exit status."""
    base = get_settings()
    args.index_kind = args.index_kind or base.index_kind
    try:
        source = CorpusSource(base.qa_data_dir, args.seed)
    except QADataMissing as exc:
        print(f"verbatim bench-scale: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args.work_dir = Path(args.work_dir).resolve()
    try:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"verbatim bench-scale: cannot use --work-dir {args.work_dir}: {exc}", file=sys.stderr
        )
        return EXIT_USAGE
    encoder = Encoder.from_settings(base)
    encoder.warm_up()
    reader = make_reader(base, encoder)
    reader.warm_up()
    rows = []
    for n in args.chunks:
        row = bench_size(n, source, encoder, reader, args, base)
        rows.append(row)
        gc.collect()
    head = (
        f"index_kind={args.index_kind} embedding={base.embedding_model} ({base.embedding_backend}) "
        f"reader={base.reader} chunk_tokens={base.chunk_tokens}/{base.chunk_overlap_tokens}"
    )
    print(head)
    print(table(rows))
    if args.add_pages:
        print(
            f"add doc: one new {args.add_pages}-page document (Library.add: chunk, embed, write),"
        )
        print("then IndexStore.refresh; remove: Library.remove, then refresh.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"argv": sys.argv, "settings": head}
        args.json.write_text(json.dumps({**payload, "rows": rows}, indent=2) + "\n")
    missed = missed_size_floors(rows, args.fail_under)
    for message in missed:
        print(f"FAIL: {message}", file=sys.stderr)
    return EXIT_FAIL if missed else 0


def chunk_sizes(value: str) -> list[int]:
    """An argparse type: comma-separated corpus sizes in chunks, each at least 100."""
    try:
        sizes = [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give sizes like 10000,100000") from None
    if not sizes or min(sizes) < 100:
        raise argparse.ArgumentTypeError("each size must be at least 100 chunks")
    return sorted(set(sizes))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench-scale`` subcommand (the ``verbatim.commands`` entry point)."""
    p = subparsers.add_parser(
        "bench-scale",
        help="ingest, load, search, ask and add-one-document costs at corpus sizes (in chunks)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--chunks", type=chunk_sizes, default=[10_000], help="sizes, e.g. 10000,100000")
    p.add_argument(
        "--work-dir",
        type=Path,
        default=PROJECT_ROOT / ".bench-scale",
        help="corpus folders and stores (kept: a rerun resumes)",
    )
    p.add_argument("--index-kind", choices=get_args(IndexChoice), default=None)
    p.add_argument("--questions", type=at_least(1), default=200, help="questions asked (whole ask)")
    p.add_argument(
        "--search-questions",
        type=at_least(1),
        default=1000,
        help="questions searched for retrieval latency and recall@10 (hit@5: all planted)",
    )
    p.add_argument(
        "--add-pages", type=at_least(0), default=20, help="pages of the added document (0: none)"
    )
    p.add_argument("--seed", type=int, default=SEED, help="corpus shuffle and question sample")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    p.add_argument(
        "--fail-under",
        type=floor,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help=f"exit 1 when a size's figure is under VALUE (repeatable): {', '.join(FLOORS)}",
    )
    p.set_defaults(func=handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.bench_scale``: the same command without the ``verbatim`` front end."""
    from eval.standalone import run

    return run(register, argv)


if __name__ == "__main__":
    sys.exit(main())
