"""MilvusIndex against a real Milvus Lite: the same top 5 as exact FAISS search on the seeds,
upserts and deletes visible at once, the data kept on disk, one process per Lite file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install '.[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install '.[milvus]')")

from embeddings.milvus_index import MilvusIndex, MilvusIndexError  # noqa: E402
from embeddings.vector_index import VectorIndex  # noqa: E402

DIM = 32
TIE = 1e-5


def _unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def lite_uri(tmp_path: Path):
    """A fresh Milvus Lite file; its in-process server is stopped afterwards."""
    uri = str(tmp_path / "index" / "milvus.db")
    yield uri
    MilvusIndex(uri).close()


def _same_up_to_ties(
    vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, got: np.ndarray, want: np.ndarray
) -> bool:
    """Whether the ids ``got`` rank like ``want`` (exact search's): at each rank the true inner
    product of the id found is within TIE of the exact one."""
    if np.array_equal(got, want):
        return True
    by_id = dict(zip(ids.tolist(), vectors, strict=True))
    true = [float(by_id[i] @ query) if i >= 0 else -np.inf for i in got]
    exact = [float(by_id[i] @ query) for i in want]
    return len(set(got.tolist())) == len(got) and np.allclose(true, exact, atol=TIE, rtol=0)


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
def test_random_vectors_top5_match_exact_faiss(lite_uri, kind):
    vectors, ids = _unit(1500), np.arange(1500, dtype=np.int64) * 7 + 3
    queries = _unit(50, seed=1)
    milvus = MilvusIndex.build(vectors, ids, uri=lite_uri, index=kind)
    exact = VectorIndex.build(vectors, "flat", ids)
    scores, found = milvus.search(queries, 5)
    want_scores, want = exact.search(queries, 5)
    assert found.shape == scores.shape == (50, 5) and found.dtype == np.int64
    assert milvus.kind == kind and milvus.dimension == DIM and milvus.size == 1500
    np.testing.assert_allclose(scores, want_scores, atol=TIE)
    assert all(
        _same_up_to_ties(vectors, ids, q, g, w)
        for q, g, w in zip(queries, found, want, strict=True)
    )


def test_seed_chunks_top5_match_exact_faiss(seed_pipeline, dev_questions, encoder, tmp_path):
    stored = list(seed_pipeline.store.docstore.chunks())
    vectors = np.stack([s.vector for s in stored]).astype(np.float32)
    ids = np.array([s.id for s in stored], dtype=np.int64)
    assert set(ids.tolist()) == set(seed_pipeline.store.chunks)
    exact = VectorIndex.build(vectors, "flat", ids)
    uri = str(tmp_path / "milvus.db")
    started = time.perf_counter()
    milvus = MilvusIndex.build(vectors, ids, uri=uri)
    build_ms = 1000 * (time.perf_counter() - started)
    try:
        queries = encoder.encode([q["question"] for q in dev_questions])  # one batch: quicker
        exact_matches, tie_matches, search_ms = 0, 0, []
        for query in queries:
            started = time.perf_counter()
            scores, found = milvus.search(query, 5)
            search_ms.append(1000 * (time.perf_counter() - started))
            want_scores, want = exact.search(query, 5)
            exact_matches += np.array_equal(found, want)
            tie_matches += _same_up_to_ties(vectors, ids, query, found[0], want[0])
            np.testing.assert_allclose(scores, want_scores, atol=TIE)
        print(
            f"\nMilvus Lite HNSW over {len(ids)} seed chunks: built in {build_ms:.0f} ms; "
            f"search median {np.median(search_ms):.1f} ms; top 5 identical to exact FAISS for "
            f"{exact_matches}/{len(queries)} dev questions, identical up to ties for "
            f"{tie_matches}/{len(queries)}"
        )
        assert len(queries) == len(dev_questions) and tie_matches == len(queries)
    finally:
        milvus.close()


def test_add_is_an_idempotent_upsert_and_remove_deletes(lite_uri):
    vectors = _unit(100)
    index = MilvusIndex(lite_uri, dimension=DIM)
    assert index.size == 0
    scores, found = index.search(vectors[:3], 5)  # empty: one slot each, id -1
    assert found.shape == (3, 1) and (found == -1).all()

    index.add(vectors, np.arange(100))
    index.add(vectors[:40], np.arange(40))  # a second process adding the same chunks
    assert index.size == 100
    assert index.ids().tolist() == list(range(100))

    index.add(-vectors[0], [5])  # the same id with a new vector replaces the old one
    assert index.size == 100
    _, found = index.search(-vectors[0], 1)
    assert found.tolist() == [[5]]

    index.remove([1, 2, 3, 999])  # an id never stored is ignored
    index.remove([1])  # and so is a second delete
    assert index.size == 97
    assert not {1, 2, 3} & set(index.ids().tolist())
    _, found = index.search(vectors[1:4], 100)
    assert found.shape[1] <= 97 and not {1, 2, 3} & set(found.ravel().tolist())

    index.remove([])
    index.add(np.zeros((0, DIM), np.float32), [])
    assert index.size == 97

    _, found = index.search(vectors[:2], 200)  # fewer hits than k: width min(k, size)
    assert found.shape[1] <= 97
    with pytest.raises(ValueError):
        index.add(vectors[:2], [7, 7])
    with pytest.raises(ValueError):
        index.add(_unit(1, dim=DIM + 1), [1])


def test_ids_and_sync_bring_a_collection_in_step(lite_uri):
    vectors, ids = _unit(300), np.arange(300, dtype=np.int64) + 1000
    index = MilvusIndex(lite_uri, dimension=DIM, batch_size=64)  # the iterator reads 256 a time
    index.add(vectors[:250], ids[:250])
    index.add(_unit(5, seed=2), [1, 2, 3, 4, 5])  # left over from an earlier corpus
    assert len(index.ids()) == 255
    assert index.sync(vectors, ids) == (50, 5)
    assert index.ids().tolist() == ids.tolist()
    assert index.sync(vectors, ids) == (0, 0)


def test_the_data_persists_and_other_clients_see_it(lite_uri):
    vectors, ids = _unit(200), np.arange(200, dtype=np.int64)
    first = MilvusIndex.build(vectors, ids, uri=lite_uri, index="flat")
    first.remove([0, 1])
    other = MilvusIndex(lite_uri, dimension=DIM).warm_up()  # same process: same Lite server
    assert other.size == 198
    other.add(vectors[:1], [0])
    assert first.size == 199
    want = first.search(vectors[10:12], 5)

    first.close()  # stops the in-process server: the next client reopens the file
    reopened = MilvusIndex(lite_uri, dimension=DIM).warm_up()
    assert reopened.size == 199 and len(reopened.ids()) == 199
    got = reopened.search(vectors[10:12], 5)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=TIE)

    with pytest.raises(MilvusIndexError, match="768-d"):
        MilvusIndex(lite_uri, dimension=768).warm_up()


_OPEN = """
import sys
from embeddings.milvus_index import MilvusIndex, MilvusIndexError
try:
    print(MilvusIndex(sys.argv[1], dimension=int(sys.argv[2])).warm_up().size)
except MilvusIndexError as exc:
    print("refused:", exc)
"""


def test_a_lite_file_is_open_in_one_process_at_a_time(lite_uri):
    index = MilvusIndex.build(_unit(10), np.arange(10), uri=lite_uri)

    def other_process() -> str:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_OPEN), lite_uri, str(DIM)],
            capture_output=True, text=True, timeout=60, check=True,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout.strip()  # fmt: skip

    out = other_process()
    assert out.startswith("refused:") and "one process at a time" in out
    index.close()
    assert other_process() == "10"


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=".db"):
        MilvusIndex("/tmp/verbatim-milvus")
    with pytest.raises(ValueError, match="hnsw or flat"):
        MilvusIndex("x.db", index="ivf")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MilvusIndex.build(_unit(2), "flat", uri="x.db")  # type: ignore[arg-type]
    assert repr(MilvusIndex("http://localhost:19530")).startswith("MilvusIndex(")


def test_the_pipeline_on_milvus_lite_retrieves_and_answers_as_on_faiss(
    seed_pipeline, seed_settings, dev_questions, encoder, tmp_path
):
    """VERBATIM_VECTOR_STORE=milvus over the same store: the same top-5 chunks for every dev
    question and the same answers."""
    from rag.pipeline import Ask, AskPipeline

    settings = seed_settings.model_copy(
        update={"vector_store": "milvus", "milvus_uri": str(tmp_path / "milvus.db")}
    )
    milvus = AskPipeline(settings, encoder=encoder, reader=seed_pipeline.reader)
    milvus.warm_up()
    try:
        assert isinstance(milvus.store.vectors, MilvusIndex)
        assert milvus.store.vectors.size == len(seed_pipeline.store.chunks)
        questions = [q["question"] for q in dev_questions]
        for q in questions:
            got = [h.chunk_id for h in milvus.retriever.search(q, 5, "dense")]
            assert got == [h.chunk_id for h in seed_pipeline.retriever.search(q, 5, "dense")], q
        ours = [a.answer for a in milvus.ask_many([Ask(q) for q in questions])]
        assert ours == [a.answer for a in seed_pipeline.ask_many([Ask(q) for q in questions])]
    finally:
        milvus.store.close()


def test_a_store_change_reaches_milvus_on_refresh(small_corpus, encoder, tmp_path):
    from rag.config import Settings
    from rag.documents import Document, content_hash
    from rag.library import Library
    from rag.store import open_index

    settings = Settings(
        corpus_dir=small_corpus, index_dir=tmp_path / "index", vector_store="milvus"
    )
    store = open_index(settings, encoder)
    try:
        text = "Tides\n\nThe Marrowgate tide gauge was installed by Ilse Varnhagen in 1911."
        Library.from_settings(settings, encoder).add(
            [(Document("tides.txt", "Tides", text, content_hash(text.encode())), "tides.txt")]
        )
        Library.from_settings(settings, encoder).remove(["a.txt"])
        assert store.refresh()
        assert sorted(store.vectors.ids().tolist()) == sorted(store.chunks)
        hit = store.vectors.search(encoder.encode(["Who installed the tide gauge?"]), 1)[1][0, 0]
        assert store.chunks[int(hit)].doc_id == "tides.txt"
    finally:
        store.close()
