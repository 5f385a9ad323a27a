"""Why hit@5 falls from 10k to 1M chunks, and what a second stage over the hybrid pool can win back:

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/scale_hit_at_5.py /tmp/scale_title 10000 1000000 [--reader]

The folder is a ``verbatim bench-scale --work-dir`` holding ``corpus-N`` and ``store-N`` per size.
Every planted question (answerable held-out SQuAD v2.0 dev) is searched once per size, dense and
BM25 to depth 50; the hybrid variants below are recomputed from those pools (the convex fusion
is ``Retriever.convex``'s). ``--reader`` also scores the fused top 20 with the span reader (best
span logit over its no-answer logit, per passage alone): about 9 minutes a size on 2 cores."""

import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from eval.scale_corpus import CorpusSource, planted_probes
from eval.squad_retrieval import holds_answer
from rag.config import get_settings
from rag.pipeline import AskPipeline

DEPTH = 50
work, sizes, with_reader = (
    Path(sys.argv[1]),
    [int(a) for a in sys.argv[2:] if a.isdigit()],
    "--reader" in sys.argv,
)
base = get_settings()
probes = [p for doc, a in CorpusSource(base.qa_data_dir).planted for p in planted_probes(doc, a)]


def pools(n: int) -> list[dict]:
    """Per question: its dense and BM25 candidates as (chunk id, score, document, hit)."""
    s = base.model_copy(
        update={"corpus_dir": work / f"corpus-{n}", "index_dir": work / f"store-{n}"}
    )
    pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
    pipe.warm_up()
    r, chunks = pipe.retriever, pipe.store.chunks

    def row(hits, p):
        out = []
        for h in hits:
            c = chunks[h.chunk_id]
            out.append((h.chunk_id, h.score, c.doc_id, holds_answer(p, c.doc_id, c.text)))
        return out

    dense = r.dense_many(
        pipe.encoder.encode_queries([p.question for p in probes]), [DEPTH] * len(probes)
    )
    rows = [
        {"dense": row(d, p), "bm25": row(r.bm25(p.question, DEPTH), p)}
        for p, d in zip(probes, dense, strict=True)
    ]
    if with_reader:
        for p, q in zip(probes, rows, strict=True):
            top = fused(q, 20)[:20]
            windows = pipe.reader.engine.read(
                [p.question] * len(top), [chunks[c].text for c, *_ in top], 5
            )
            margin = defaultdict(lambda: -1e9)
            for w in windows:
                best = max((span[0] for span in w.spans), default=-1e9)
                margin[w.pair] = max(margin[w.pair], best - w.null)
            q["read"] = [(*t, margin[i]) for i, t in enumerate(top)]
    return rows


def fused(q: dict, pool: int, dense_weight: float = 1.0, doc_bonus: float = 0.0) -> list[tuple]:
    """The hybrid ranking (convex fusion of the two pools cut at ``pool``), best first, as
    (chunk id, score, hit); ``doc_bonus`` adds that share of the best other candidate of the same
    document (document-level evidence)."""
    scores, doc, hit = defaultdict(float), {}, {}
    for weight, hits in ((dense_weight, q["dense"][:pool]), (1.0, q["bm25"][:pool])):
        if not hits:
            continue
        hi, lo = hits[0][1], hits[-1][1]
        for c, s, d, h in hits:
            scores[c] += weight / (1 + dense_weight) * ((s - lo) / (hi - lo) if hi > lo else 1.0)
            doc[c], hit[c] = d, h
    if doc_bonus:
        by_doc = defaultdict(list)
        for c, s in scores.items():
            by_doc[doc[c]].append((c, s))
        best_other = {c: max([t for o, t in by_doc[doc[c]] if o != c] or [0.0]) for c in scores}
        scores = {c: s + doc_bonus * best_other[c] for c, s in scores.items()}
    return [(c, s, hit[c]) for c, s in sorted(scores.items(), key=lambda t: (-t[1], t[0]))]


def share(rows, pick) -> str:
    return f"{np.mean([any(pick(q)) for q in rows]):.4f}"


results = {n: pools(n) for n in sizes}
print("| | " + " | ".join(f"{n:,}" for n in sizes) + " |\n|---|" + "---:|" * len(sizes))
lines = {
    "hybrid hit@5 (the service)": lambda q: [h for *_, h in fused(q, 20)[:5]],
    "dense hit@5": lambda q: [h for *_, h in q["dense"][:5]],
    "BM25 hit@5": lambda q: [h for *_, h in q["bm25"][:5]],
    "hybrid hit@20": lambda q: [h for *_, h in fused(q, 20)[:20]],
    "either pool of 20 holds a hit": lambda q: [h for *_, h in q["dense"][:20] + q["bm25"][:20]],
    "either pool of 50 holds a hit": lambda q: [h for *_, h in q["dense"] + q["bm25"]],
    "hybrid hit@5, pools of 50": lambda q: [h for *_, h in fused(q, 50)[:5]],
    "hybrid hit@5, dense weight .6": lambda q: [h for *_, h in fused(q, 20, 0.6)[:5]],
    "hybrid hit@5, + .3 of the document's best other chunk": lambda q: [
        h for *_, h in fused(q, 20, doc_bonus=0.3)[:5]
    ],
}
if with_reader:

    def reranked(q, mix):
        margins = [t[3] for t in q["read"]]
        lo, hi = min(margins), max(margins)

        def key(t):
            return -((1 - mix) * t[1] + mix * ((t[3] - lo) / (hi - lo) if hi > lo else 1.0))

        return [t[2] for t in sorted(q["read"], key=key)[:5]]

    lines["top 20 reordered by the reader alone"] = lambda q: reranked(q, 1.0)
    lines["top 20 reordered by .5 fused + .5 reader"] = lambda q: reranked(q, 0.5)
for label, pick in lines.items():
    print(f"| {label} | " + " | ".join(share(results[n], pick) for n in sizes) + " |")

big, small = results[max(sizes)], results[min(sizes)]
lost = [
    b
    for a, b in zip(small, big, strict=True)
    if any(h for *_, h in fused(a, 20)[:5]) and not any(h for *_, h in fused(b, 20)[:5])
]
docs = [{c: d for c, _, d, _ in q["dense"] + q["bm25"]} for q in lost]
sources = Counter(
    doc[c].split("/")[0] for q, doc in zip(lost, docs, strict=True) for c, *_ in fused(q, 20)[:5]
)
print(
    f"\n{len(lost)} questions hit at {min(sizes):,} and miss at {max(sizes):,}; their top 5 there by source:",
    dict(sources.most_common()),
)
