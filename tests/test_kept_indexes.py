"""An index built from the store a batch at a time is the index built from all of it at once;
catching up by id finds exactly what was removed and added."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rag.kept_indexes as kept
from embeddings.index_params import IndexParams
from embeddings.vector_index import VectorIndex


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


ids_once = st.lists(st.integers(0, 10**12), unique=True, max_size=60)


@given(ids_once, ids_once, st.randoms())
def test_the_difference_is_the_set_difference_in_any_order(kept_ids, store_ids, rnd):
    rnd.shuffle(kept_ids)  # a kept graph's ids come in insertion order, not sorted
    a, b = np.array(kept_ids, dtype=np.int64), np.array(sorted(store_ids), dtype=np.int64)
    stale, missing = kept._difference(a, b)
    assert sorted(stale.tolist()) == sorted(set(kept_ids) - set(store_ids))
    assert sorted(missing.tolist()) == sorted(set(store_ids) - set(kept_ids))
