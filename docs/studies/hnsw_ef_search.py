"""HNSW recall@10 against exact search, and search time, per ef_search, on a bench-scale store:

    python docs/studies/hnsw_ef_search.py /path/to/store-1000000 [EF ...]   # the int8 1M store

Questions: 1,000 answerable held-out SQuAD v2.0 dev questions (the planted ones), int8 vectors."""

import random
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from embeddings.encoder import Encoder
from embeddings.vector_index import VectorIndex
from rag.config import get_settings
from rag.docstore import DocumentStore
from rag.training.squad import heldout_examples

s = get_settings().model_copy(update={"embedding_precision": "int8"})
qs = [e.question for e in heldout_examples(s.qa_data_dir) if e.answers]
random.Random(0).shuffle(qs)
qs = qs[:1000]
enc = Encoder.from_settings(s)
q = enc.encode_queries(qs)
store = Path(sys.argv[1])
ds = DocumentStore.in_folder(store)
ids, mat = ds.vectors()
_, ex = VectorIndex.build(mat, "flat", ids).search(q, 10)  # exact, as bench-scale's recall
del mat
h = VectorIndex.load(store / "vectors-hnsw.faiss", "hnsw")
inner = faiss.downcast_index(h._index.index)
for ef in [int(a) for a in sys.argv[2:]] or [64, 96, 128, 192]:
    inner.hnsw.efSearch = ef
    lat = []
    res = []
    for row in q:
        t0 = time.perf_counter()
        res.append(h.search(row, 10)[1][0])
        lat.append((time.perf_counter() - t0) * 1000)
    rec = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(res, ex, strict=True)])
    print(
        f"ef_search {ef}: recall@10 {rec:.4f}  search p50 {np.median(lat):.2f} ms p95 {np.percentile(lat, 95):.2f} ms",
        flush=True,
    )
