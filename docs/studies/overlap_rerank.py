"""Can the question's words and word pairs found in a candidate reorder a deeper hybrid pool well
enough to narrow the hit@5 gap between 10k and 1M chunks (issue 18)?

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/overlap_rerank.py /work/scale_title 10000 1000000

Per planted question: dense and BM25 pools of ``DEPTH``, fused as the service fuses (convex,
min-max per pool); each candidate then gains ``w`` times the share of the question's content
words it holds (``cover``) or of the question's word pairs it holds (``pairs``). Weights are
chosen on the planted articles at even positions and reported on the odd ones (and on all)."""

import re
import sys
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from eval.scale_corpus import CorpusSource, planted_probes
from eval.squad_retrieval import holds_answer
from rag.config import get_settings
from rag.pipeline import AskPipeline
from rag.readers.words import STOP_WORDS as STOP

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
work, sizes = Path(sys.argv[1]), [int(a) for a in sys.argv[2:]]
base = get_settings()
planted = CorpusSource(base.qa_data_dir).planted
probes = [p for doc, a in planted for p in planted_probes(doc, a)]
half = {doc.doc_id: i % 2 for i, (doc, _) in enumerate(planted)}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def overlap(question: str, text: str) -> tuple[float, float]:
    q, t = words(question), words(text)
    content, present = {w for w in q if w not in STOP}, set(t)
    pairs = {(a, b) for a, b in zip(q, q[1:], strict=False) if a not in STOP or b not in STOP}
    cover = len(content & present) / max(1, len(content))
    return cover, len(pairs & set(zip(t, t[1:], strict=False))) / max(1, len(pairs))


def candidates(n: int, depth: int) -> list[list[tuple[float, float, float, bool]]]:
    """Per question: (fused score, cover, pairs, hit) of every candidate of the two pools."""
    s = base.model_copy(
        update={"corpus_dir": work / f"corpus-{n}", "index_dir": work / f"store-{n}"}
    )
    pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
    pipe.warm_up()
    r, chunks = pipe.retriever, pipe.store.chunks
    dense = r.dense_many(
        pipe.encoder.encode_queries([p.question for p in probes]), [depth] * len(probes)
    )
    out = []
    for p, d in zip(probes, dense, strict=True):
        fused = r.convex([(r.dense_weight, d), (r.bm25_weight, r.bm25(p.question, depth))])
        rows = []
        for c, score in fused.items():
            chunk = chunks[c]
            cover, pairs = overlap(p.question, chunk.text)
            rows.append((score, cover, pairs, holds_answer(p, chunk.doc_id, chunk.text)))
        out.append(rows)
    return out


def hit5(rows, w_cover: float, w_pairs: float) -> bool:
    ranked = sorted(rows, key=lambda t: -(t[0] + w_cover * t[1] + w_pairs * t[2]))
    return any(t[3] for t in ranked[:5])


def mean(cands, w, keep) -> float:
    return float(np.mean([hit5(c, *w) for p, c in zip(probes, cands, strict=True) if keep(p)]))


for depth in (50, 20):
    cands = {n: candidates(n, depth) for n in sizes}
    grid = [(a, b) for a in WEIGHTS for b in WEIGHTS]
    picks = []
    for n in sizes:
        even = {w: mean(cands[n], w, lambda p: half[p.doc_id] == 0) for w in grid}
        picks.append(max(grid, key=lambda w: (even[w], -w[0] - w[1])))
        print(f"\npools of {depth}; chosen on the even articles at {n:,}: {picks[-1]}")
    print("| weights (cover, pairs) | " + " | ".join(f"{n:,} odd / all" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for w in [(0.0, 0.0), *picks, (0.3, 0.3), (0.5, 0.5), (1.0, 1.0), (0.5, 0.0), (0.0, 0.5)]:
        cells = [
            f"{mean(cands[n], w, lambda p: half[p.doc_id] == 1):.4f} / "
            f"{mean(cands[n], w, lambda p: True):.4f}"
            for n in sizes
        ]
        print(f"| {w} | " + " | ".join(cells) + " |", flush=True)
