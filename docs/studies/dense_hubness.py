"""Does a hubness correction of the dense ranking (CSLS) narrow the hit@5 gap between 10k and 1M
chunks (issue 18)?

    VERBATIM_EMBEDDING_PRECISION=int8 VERBATIM_CHUNK_CONTEXT=title \\
        python docs/studies/dense_hubness.py /work/scale_norms 10000 1000000

The folder is a ``verbatim bench-scale --work-dir`` holding ``corpus-N`` and ``store-N`` per size.
Each stored chunk gets r, its mean cosine to its 10 nearest of 10,000 SQuAD v1.1 train questions
(none held out); the dense ranking is then by cosine minus alpha * r (CSLS ranks by 2 cos - r:
alpha .5), searched exactly over the store's vectors, and fused with the service's BM25 pool by
``Retriever.convex`` (pools of 20). Alpha 0 is exact search with the service's fusion."""

import gzip
import json
import random
import sys
from pathlib import Path

import faiss
import numpy as np

from embeddings.encoder import Encoder
from eval.scale_corpus import CorpusSource, planted_probes
from eval.squad_retrieval import holds_answer
from rag.config import get_settings
from rag.pipeline import AskPipeline
from rag.retrieval import Hit

ALPHAS, NEAREST, POOL = (0.0, 0.25, 0.5, 1.0), 10, 20
work, sizes = Path(sys.argv[1]), [int(a) for a in sys.argv[2:]]
base = get_settings()
probes = [p for doc, a in CorpusSource(base.qa_data_dir).planted for p in planted_probes(doc, a)]
with gzip.open(base.qa_data_dir / "squad-v1.1-train-from-explorer.json.gz", "rt") as f:
    train = json.load(f)["data"]
reference = [q["question"] for a in train for p in a["paragraphs"] for q in p["qas"]]
random.Random(0).shuffle(reference)
reference = reference[:10_000]


def hit_at_5(pipe: AskPipeline, probe, hits: list[Hit]) -> bool:
    chunks = pipe.store.chunks
    return any(
        holds_answer(probe, chunks[h.chunk_id].doc_id, chunks[h.chunk_id].text) for h in hits[:5]
    )


def rows(n: int) -> dict[float, tuple[float, float]]:
    """alpha -> (dense hit@5, hybrid hit@5) over every planted question."""
    s = base.model_copy(
        update={"corpus_dir": work / f"corpus-{n}", "index_dir": work / f"store-{n}"}
    )
    pipe = AskPipeline(s, encoder=Encoder.from_settings(s))
    pipe.warm_up()
    mapped = pipe.store.vectors._index  # IndexIDMap2 over a flat or HNSW index
    ids = faiss.vector_to_array(mapped.id_map)
    inner = faiss.downcast_index(mapped.index)
    vectors = inner.reconstruct_n(0, inner.ntotal).astype(np.float32)
    refs = pipe.encoder.encode_queries(reference).astype(np.float32)
    hub = np.empty(len(vectors), np.float32)
    for i in range(0, len(vectors), 8192):
        sims = vectors[i : i + 8192] @ refs.T
        hub[i : i + 8192] = np.partition(sims, -NEAREST, axis=1)[:, -NEAREST:].mean(1)
    questions = pipe.encoder.encode_queries([p.question for p in probes]).astype(np.float32)
    dense: dict[float, list[list[Hit]]] = {a: [] for a in ALPHAS}
    for i in range(0, len(questions), 256):
        sims = questions[i : i + 256] @ vectors.T
        for a in ALPHAS:
            scores = sims - a * hub[None, :]
            for row in scores:
                top = np.argpartition(-row, POOL)[:POOL]
                top = top[np.argsort(-row[top])]
                dense[a].append([Hit(int(ids[c]), float(row[c])) for c in top])
    bm25 = [pipe.retriever.bm25(p.question, POOL) for p in probes]
    out = {}
    for a in ALPHAS:
        hybrid = []
        for p, d, b in zip(probes, dense[a], bm25, strict=True):
            fused = pipe.retriever.convex([(1.0, d), (1.0, b)])
            best = sorted(fused.items(), key=lambda t: (-t[1], t[0]))[:5]
            hybrid.append(hit_at_5(pipe, p, [Hit(c, v) for c, v in best]))
        single = [hit_at_5(pipe, p, d) for p, d in zip(probes, dense[a], strict=True)]
        out[a] = (float(np.mean(single)), float(np.mean(hybrid)))
    return out


results = {n: rows(n) for n in sizes}
print("| alpha | " + " | ".join(f"{n:,}: dense / hybrid" for n in sizes) + " | hybrid gap |")
print("|---|" + "---|" * len(sizes) + "---:|")
for a in ALPHAS:
    cells = " | ".join(f"{results[n][a][0]:.4f} / {results[n][a][1]:.4f}" for n in sizes)
    gap = results[min(sizes)][a][1] - results[max(sizes)][a][1]
    print(f"| {a:g} | {cells} | {gap:.4f} |")
