"""An index built from the store a batch at a time is the index built from all of it at once."""

from __future__ import annotations

import numpy as np
import pytest

import rag.kept_indexes as kept
from embeddings.vector_index import IndexParams, VectorIndex


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_batched_build_holds_every_vector_and_searches_as_one_build(
    seed_pipeline, monkeypatch, kind
):
    docstore = seed_pipeline.store.docstore
    ids = seed_pipeline.store.chunks.ids()
    monkeypatch.setattr(kept, "BATCH", 7)  # the seeds' 129 chunks: 19 batches
    batched = kept.built_vectors(docstore, kind, IndexParams(), ids)
    found, matrix = docstore.vectors()
    whole = VectorIndex.build(matrix, kind, found, IndexParams())
    assert sorted(batched.ids().tolist()) == sorted(ids.tolist()) == found.tolist()
    scores, hits = batched.search(matrix[:20], 5)
    assert hits[:, 0].tolist() == found[:20].tolist()  # each vector finds itself first
    if kind == "flat":  # exact: the same neighbours and scores
        np.testing.assert_allclose(scores, whole.search(matrix[:20], 5)[0], atol=1e-6)
