"""Does pseudo-relevance feedback on the question's vector narrow the hit@5 gap between 10k and 1M
chunks (issue 18)?

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/dense_feedback.py /work/scale_title 10000 1000000

The folder is a ``verbatim bench-scale --work-dir`` holding ``corpus-N`` and ``store-N`` per size.
Every planted question (answerable held-out SQuAD v2.0 dev) is searched as the service does
(dense and BM25 to depth 20, convex fusion); then the question's vector is moved towards the
stored vectors of the first ``k`` fused chunks (Rocchio: q + beta * mean, renormalised), dense is
searched again with it and fused with the same BM25 pool. The fusion is ``Retriever.convex``'s."""

import sys
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder
from eval.scale_corpus import CorpusSource, planted_probes
from eval.squad_retrieval import Probe, holds_answer
from rag.config import get_settings
from rag.pipeline import AskPipeline
from rag.retrieval import Hit

POOL = 20
VARIANTS = [(k, beta, src) for src in ("fused", "dense") for k in (1, 3, 5) for beta in (0.5, 1.0)]
work, sizes = Path(sys.argv[1]), [int(a) for a in sys.argv[2:]]
base = get_settings()
probes = [p for doc, a in CorpusSource(base.qa_data_dir).planted for p in planted_probes(doc, a)]


def hits_at_5(n: int) -> dict[str, float]:
    s = base.model_copy(
        update={"corpus_dir": work / f"corpus-{n}", "index_dir": work / f"store-{n}"}
    )
    pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
    pipe.warm_up()
    r, chunks, docstore = pipe.retriever, pipe.store.chunks, pipe.store.docstore

    def fuse(dense: list[Hit], bm25: list[Hit]) -> list[int]:
        scores = r.convex([(r.dense_weight, dense), (r.bm25_weight, bm25)])
        return [c for c, _ in sorted(scores.items(), key=lambda t: (-t[1], t[0]))]

    def hit(p: Probe, ranked: list[int]) -> bool:
        return any(holds_answer(p, chunks[c].doc_id, chunks[c].text) for c in ranked[:5])

    queries = pipe.encoder.encode_queries([p.question for p in probes])
    dense = r.dense_many(queries, [POOL] * len(probes))
    bm25 = [r.bm25(p.question, POOL) for p in probes]
    fused = [fuse(d, b) for d, b in zip(dense, bm25, strict=True)]
    out = {"service": np.mean([hit(p, f) for p, f in zip(probes, fused, strict=True)])}
    for k, beta, src in VARIANTS:
        moved = []
        for q, d, f in zip(queries, dense, fused, strict=True):
            ids = np.array(f[:k] if src == "fused" else [h.chunk_id for h in d[:k]], np.int64)
            found, vecs = docstore.vectors(ids)
            v = q + beta * vecs.mean(axis=0) if len(found) else q
            moved.append(v / np.linalg.norm(v))
        again = r.dense_many(np.asarray(moved, np.float32), [POOL] * len(probes))
        out[f"{src} top {k}, beta {beta}"] = np.mean(
            [hit(p, fuse(d, b)) for p, d, b in zip(probes, again, bm25, strict=True)]
        )
        print(n, k, beta, src, f"{out[f'{src} top {k}, beta {beta}']:.4f}", flush=True)
    return out


results = {n: hits_at_5(n) for n in sizes}
print("| hybrid hit@5 | " + " | ".join(f"{n:,}" for n in sizes) + " | gap |")
print("|---|" + "---:|" * (len(sizes) + 1))
for label in results[sizes[0]]:
    vals = [results[n][label] for n in sizes]
    print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + f" | {vals[0] - vals[-1]:.4f} |")
