"""The document store and the serving index: round trip, folder sync, staleness, damage,
all-or-nothing writes, and incremental updates that match a fresh load."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.config import Settings
from rag.docstore import DocumentStore, StoreError
from rag.documents import Document, content_hash
from rag.library import DocumentConflict, Library, UnknownDocument, check_doc_id
from rag.sparse import _STEMMER, BM25_FILE, BM25_FILE_1, SparseIndex, terms_of
from rag.store import IndexLoadError, IndexStore, StaleIndexError, open_index


@pytest.fixture
def small_settings(small_corpus: Path, tmp_path: Path) -> Settings:
    return Settings(
        corpus_dir=small_corpus,
        index_dir=tmp_path / "index",
        chunk_tokens=24,
        chunk_overlap_tokens=6,
    )


def text_doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, doc_id, text, content_hash(text.encode()))


def search_ids(store: IndexStore, encoder, query: str, k: int = 5) -> tuple[list, list]:
    dense = store.vectors.search(encoder.encode([query]), k)[1][0].tolist()
    return dense, store.sparse.search(query, k)[1].tolist()


def test_round_trip(small_settings, encoder):
    built = open_index(small_settings, encoder)
    loaded = IndexStore.load(built.docstore)
    assert loaded.chunks == built.chunks and loaded.documents == built.documents
    assert set(built.documents) == {"a.txt", "sub/b.md", "c.html"}
    for query in ("ferry captain", "lighthouse"):
        assert search_ids(loaded, encoder, query) == search_ids(built, encoder, query)
    for c in built.chunks.values():
        assert built.documents[c.doc_id].text[c.start : c.end] == c.text


def test_the_store_is_one_sqlite_file_in_wal_mode(small_settings, encoder):
    open_index(small_settings, encoder)
    path = small_settings.index_dir / "verbatim.sqlite3"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    records = DocumentStore(path).records()
    assert {r.origin for r in records} == {"folder"}
    assert all(len(r.sha256) == 64 and r.added_at.endswith("Z") and r.chunks for r in records)


def test_an_unchanged_folder_writes_nothing_and_a_changed_file_is_the_only_one_embedded(
    small_settings, encoder, small_corpus
):
    first = open_index(small_settings, encoder)
    assert open_index(small_settings, encoder).generation == first.generation
    (small_corpus / "a.txt").write_text(
        "Harbour Notes\n\nThe lighthouse was painted red in 1990.\n"
    )
    second = open_index(small_settings, encoder)
    assert second.generation == first.generation + 1
    assert any("painted red" in c.text for c in second.chunks.values())
    kept = {i for i, c in first.chunks.items() if c.doc_id != "a.txt"}
    assert kept <= set(second.chunks)  # the other documents' chunks (and vectors) were kept
    (small_corpus / "c.html").unlink()
    assert "c.html" not in open_index(small_settings, encoder).documents


def test_changed_settings_trigger_rechunking_or_refusal(small_settings, encoder):
    first = open_index(small_settings, encoder)
    other = small_settings.model_copy(update={"chunk_tokens": 40})
    with pytest.raises(StaleIndexError, match="chunk_tokens"):
        open_index(other.model_copy(update={"on_stale_index": "refuse"}), encoder)
    again = open_index(other, encoder)
    assert len(again.chunks) < len(first.chunks)
    assert again.docstore.meta("params")["chunk_tokens"] == 40


def test_a_stale_folder_is_refused_when_asked(small_settings, encoder, small_corpus):
    open_index(small_settings, encoder)
    (small_corpus / "d.txt").write_text("Tides\n\nThe tide turns twice a day.\n")
    with pytest.raises(StaleIndexError, match="1 file"):
        open_index(small_settings.model_copy(update={"on_stale_index": "refuse"}), encoder)


def test_index_follows_the_folder_it_was_built_from(small_settings, encoder):
    built = open_index(small_settings, encoder)
    again = open_index(small_settings.model_copy(update={"corpus_dir": None}), encoder)
    assert again.generation == built.generation
    assert set(again.documents) == {"a.txt", "sub/b.md", "c.html"}


def test_a_damaged_store_gives_a_clear_error_and_rebuild_sets_it_aside(small_settings, encoder):
    open_index(small_settings, encoder).docstore.close()
    path = small_settings.index_dir / "verbatim.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    for leftover in small_settings.index_dir.glob("verbatim.sqlite3-*"):
        leftover.unlink()
    with pytest.raises(IndexLoadError, match="verbatim ingest --rebuild"):
        open_index(small_settings, encoder)
    assert len(open_index(small_settings, encoder, rebuild=True).chunks) > 0
    assert list(small_settings.index_dir.glob("verbatim.sqlite3.damaged-*"))


def test_an_index_of_the_earlier_format_is_replaced(small_settings, encoder):
    small_settings.index_dir.mkdir(parents=True)
    (small_settings.index_dir / "manifest.json").write_text('{"format_version": 1}')
    (small_settings.index_dir / "chunks.jsonl").write_text("")
    assert len(open_index(small_settings, encoder).documents) == 3
    assert not (small_settings.index_dir / "manifest.json").exists()


def test_a_write_that_fails_midway_changes_nothing(small_settings, encoder):
    store = open_index(small_settings, encoder)
    library = Library.from_settings(small_settings, encoder)
    before = (store.docstore.generation(), store.docstore.records())

    class Exploding:
        def __array__(self, *args, **kwargs):  # read after the document row is written
            raise KeyboardInterrupt("power cut")

    [put] = library._puts([(text_doc("new.txt", "Tides\n\nThe tide turns."), "upload", "")])
    bad = type(put.chunks[0])(0, 5, ["tide"], Exploding())
    with pytest.raises(KeyboardInterrupt):
        store.docstore.write([put, type(put)(text_doc("b.txt", "Bad"), "upload", "", [bad])])
    assert (store.docstore.generation(), store.docstore.records()) == before
    assert IndexStore.load(store.docstore).chunks == store.chunks


def test_incremental_updates_match_a_fresh_load(small_settings, encoder):
    store = open_index(small_settings, encoder)
    library = Library.from_settings(small_settings, encoder)
    fact = "Tides\n\nThe harbour tide gauge was installed by Mirela Castaño in 1911."
    [change] = library.add([(text_doc("tides.txt", fact), "tides.txt")])
    assert change.status == "added" and change.chunks >= 1
    assert store.refresh() and not store.refresh()
    assert any("Castaño" in c.text for c in store.chunks.values())
    library.remove(["a.txt"])
    library.add([(text_doc("tides.txt", fact.replace("1911", "1912")), "tides.txt")], replace=True)
    store.refresh()
    fresh = IndexStore.load(store.docstore)
    assert store.chunks == fresh.chunks and store.documents == fresh.documents
    assert store.vectors.size == fresh.vectors.size == len(fresh.chunks)
    for query in ("tide gauge installed", "lighthouse keeper", "ferry"):
        assert search_ids(store, encoder, query) == search_ids(fresh, encoder, query)
    assert store.chunk_counts() == fresh.chunk_counts()


def test_same_bytes_are_a_no_op_and_a_used_id_is_a_conflict(small_settings, encoder):
    store = open_index(small_settings, encoder)
    library = Library.from_settings(small_settings, encoder)
    doc = text_doc("tides.txt", "Tides\n\nThe tide turns twice a day.")
    library.add([(doc, "tides.txt")])
    generation = store.docstore.generation()
    again = library.add([(Document("copy.txt", "Copy", doc.text, doc.content_hash), "copy.txt")])
    assert [(c.doc_id, c.status) for c in again] == [("tides.txt", "unchanged")]
    with pytest.raises(DocumentConflict, match="PUT /documents/tides.txt"):
        library.add([(text_doc("tides.txt", "Tides\n\nAnother text."), "tides.txt")])
    with pytest.raises(UnknownDocument):
        library.remove(["tides.txt", "nowhere.txt"])
    assert store.docstore.generation() == generation  # nothing of the refused writes landed


@pytest.mark.parametrize(
    "bad", ["", "../etc/passwd", "a//b", "./x", "a/..", " x", "a\x00b", "a\\b"]
)
def test_unusable_document_ids_are_refused(bad):
    with pytest.raises(ValueError, match="not a usable document id"):
        check_doc_id(bad)


def test_a_store_of_another_schema_is_refused(tmp_path):
    path = tmp_path / "verbatim.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(StoreError, match="schema 99"):
        DocumentStore(path).generation()


def test_bm25_ranks_as_bm25s_does(seed_pipeline):
    """The incremental BM25 scores as bm25s (Lucene's formula) would over the same chunks."""
    chunks = seed_pipeline.store.chunks
    ids = sorted(chunks)
    reference = bm25s.BM25()
    reference.index(
        bm25s.tokenize(
            [chunks[i].text for i in ids], stopwords="en", stemmer=_STEMMER, show_progress=False
        ),
        show_progress=False,
    )
    for query in ("Lavrov foreign minister", "anniversary", "Beijing security cooperation"):
        tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
        )[0]
        expected = reference.get_scores(tokens)
        scores, found = seed_pipeline.store.sparse.search(query, 10)
        assert len(found) == min(10, int((expected > 0).sum()))
        np.testing.assert_allclose(scores, [expected[ids.index(i)] for i in found], rtol=1e-4)
        assert len(found) > 0
        assert scores[-1] >= np.sort(expected)[::-1][len(found) - 1] - 1e-4


WORDS = ["harbour", "ferry", "captain", "lighthouse", "orchard", "tide", "storm", "ledger"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(range(8)), min_size=1, max_size=12), min_size=1, max_size=8),
    st.data(),
)
def test_bm25_after_removals_equals_a_fresh_build(texts, data):
    """Chunks built at once, others added later, some of either removed: the same scores and
    order as an index built from what stays."""
    stems = terms_of([" ".join(WORDS)])[0]
    terms = {i: [stems[w] for w in t] for i, t in enumerate(texts)}
    built = data.draw(st.integers(0, len(terms)))
    removed = data.draw(st.sets(st.sampled_from(sorted(terms))))
    index = SparseIndex.build((i, t) for i, t in terms.items() if i < built)
    for i, t in terms.items():
        if i >= built:
            index.add(i, t)
    for i in removed:
        index.remove(i)
    fresh = SparseIndex.build((i, t) for i, t in terms.items() if i not in removed)
    assert index.size == fresh.size
    for query in ["harbour", "ferry captain", "tide storm ledger", "orchard harbour harbour"]:
        got, want = index.search(query, 3), fresh.search(query, 3)
        assert got[1].tolist() == want[1].tolist()
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_terms_are_stemmed_without_stop_words():
    assert terms_of(["The captains of the ships sailing"]) == [["captain", "ship", "sail"]]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_index_kind_finds_vectors_by_id_and_forgets_removed_ones(kind, tmp_path):
    from embeddings.vector_index import VectorIndex

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000, 1300)
    index = VectorIndex.build(vectors, kind, ids)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss", kind)
    scores, found = loaded.search(vectors[:20], 3)
    assert (found[:, 0] == ids[:20]).mean() >= 0.9
    assert np.all(scores[:, 0] > 0.99) or kind != "flat"
    loaded.remove([1000, 1001])
    assert loaded.size == 298
    assert not {1000, 1001} & set(loaded.search(vectors[:2], 5)[1].ravel().tolist())


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_a_few_questions_search_on_one_thread_as_many_do_on_all(kind):
    import faiss

    from embeddings.vector_index import ONE_THREAD_BELOW, VectorIndex

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(vectors, kind)
    queries = rng.normal(size=(ONE_THREAD_BELOW, 16)).astype(np.float32)
    threads = faiss.omp_get_max_threads()
    many = index.search(queries, 5)  # all threads
    few = [index.search(q, 5) for q in queries]  # one thread each
    assert faiss.omp_get_max_threads() == threads  # the caller's setting is given back
    np.testing.assert_array_equal(np.vstack([f[1] for f in few]), many[1])
    np.testing.assert_allclose(np.vstack([f[0] for f in few]), many[0], rtol=1e-5)


def test_unknown_index_kind_is_rejected():
    from embeddings.vector_index import VectorIndex

    with pytest.raises(ValueError, match="unknown index kind"):
        VectorIndex.build(np.zeros((2, 4), dtype=np.float32), "annoy")


def test_jobs_cut_short_by_a_stop_are_marked_failed_at_start(small_settings, encoder):
    docstore = open_index(small_settings, encoder).docstore
    running, done = docstore.create_job(), docstore.create_job()
    docstore.update_job(running, state="running", progress=0.4)
    docstore.update_job(done, state="done", progress=1.0)
    open_index(small_settings, encoder)
    assert docstore.job(running)["state"] == "failed"
    assert docstore.job(running)["error"]["code"] == "interrupted"
    assert docstore.job(done)["state"] == "done"


def test_an_approximate_index_is_kept_and_caught_up_at_load(small_settings, encoder, caplog):
    hnsw = small_settings.model_copy(update={"index_kind": "hnsw"})
    store = open_index(hnsw, encoder)
    kept = small_settings.index_dir / "vectors-hnsw.faiss"
    assert store.kind == "hnsw" and kept.is_file()
    library = Library.from_settings(hnsw, encoder)
    library.add([(text_doc("tides.txt", "Tides\n\nThe tide gauge was installed in 1911."), "t")])
    library.remove(["a.txt"])
    with caplog.at_level("INFO", logger="rag.kept_indexes"):
        again = IndexStore.load(store.docstore, "hnsw")
    assert "kept one loaded" in caplog.text
    exact = IndexStore.load(store.docstore, "flat")
    assert sorted(again.vectors.ids().tolist()) == sorted(exact.chunks)
    for query in ("tide gauge installed", "orchard apples"):
        assert search_ids(again, encoder, query) == search_ids(exact, encoder, query)


def test_auto_index_kind_is_exact_until_the_threshold(small_settings):
    from rag.store import index_kind_for

    auto = small_settings.model_copy(update={"index_kind": "auto", "auto_index_min_chunks": 100})
    assert (index_kind_for(auto, 99), index_kind_for(auto, 100)) == ("flat", "hnsw")
    fixed = auto.model_copy(update={"index_kind": "ivf"})
    assert index_kind_for(fixed, 10) == "ivf"


def test_the_int8_encoder_stays_close_and_switching_to_it_embeds_again(small_settings, encoder):
    from embeddings.encoder import Encoder

    int8 = small_settings.model_copy(update={"embedding_precision": "int8"})
    quantised = Encoder.from_settings(int8)
    texts = ["The lighthouse keeper logged every storm.", "Apples ripen in the orchard."]
    cosines = (quantised.encode(texts) * encoder.encode(texts)).sum(axis=1)
    assert cosines.min() > 0.97
    first = open_index(small_settings, encoder)
    again = open_index(int8, quantised)
    assert again.docstore.meta("params")["embedding_precision"] == "int8"
    assert not set(again.chunks) & set(first.chunks)  # every chunk embedded anew


def test_an_int8_query_vector_does_not_depend_on_the_questions_asked_with_it(
    small_settings, encoder
):
    from embeddings.encoder import Encoder

    quantised = Encoder.from_settings(
        small_settings.model_copy(update={"embedding_precision": "int8"})
    )
    questions = [
        "Who logged every storm?",
        "When do the apples in the orchard ripen, and who picks them before the first frost?",
        "Tides?",
    ]
    together = quantised.encode_queries(questions)
    alone = np.vstack([quantised.encode_queries([q]) for q in questions])
    assert np.array_equal(together, alone)
    batched = Encoder.from_settings(
        small_settings.model_copy(update={"embedding_precision": "int8", "embedding_batch_size": 4})
    )
    assert not np.array_equal(batched.encode(questions), alone)  # one batch: shared scales
    assert np.array_equal(encoder.encode_queries(questions), encoder.encode(questions))  # fp32


def test_bm25_postings_are_kept_and_caught_up_at_load(small_settings, encoder, caplog, tmp_path):
    corpus = tmp_path / "many"
    corpus.mkdir()
    for n in range(12):
        (corpus / f"{n}.txt").write_text(f"Note {n}\n\nThe harbour log lists {n} storms.\n")
    small_settings = small_settings.model_copy(update={"corpus_dir": corpus})
    store = open_index(small_settings, encoder)
    kept = small_settings.index_dir / BM25_FILE
    assert kept.is_file()
    library = Library.from_settings(small_settings, encoder)
    library.add([(text_doc("tides.txt", "Tides\n\nThe tide gauge was installed in 1911."), "t")])
    assert len(store.chunks) >= 10  # one new chunk is under a tenth: caught up, not rebuilt
    with caplog.at_level("INFO", logger="rag.kept_indexes"):
        cached = IndexStore.load(store.docstore)
    assert "kept postings loaded, -0 +1" in caplog.text
    assert isinstance(cached.sparse._base.rows, np.memmap)  # mapped, not read whole
    fresh = IndexStore.load(store.docstore, cache=False)
    assert sorted(cached.sparse.ids().tolist()) == sorted(fresh.chunks)
    for query in ("tide gauge installed", "harbour storms", "note 7"):
        got, want = cached.sparse.search(query, 5), fresh.sparse.search(query, 5)
        assert len(want[1])
        assert got[1].tolist() == want[1].tolist()
        np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    kept.write_bytes(b"not a postings file")
    with caplog.at_level("WARNING", logger="rag.kept_indexes"):
        again = IndexStore.load(store.docstore)
    assert "rebuilding BM25" in caplog.text
    assert (
        again.sparse.search("tide gauge", 3)[1].tolist()
        == fresh.sparse.search("tide gauge", 3)[1].tolist()
    )
    # An earlier version kept the postings as .npz: read once, kept again in the mapped file.
    earlier = kept.with_name(BM25_FILE_1)
    with open(earlier, "wb") as f:
        np.savez(f, **SparseIndex.load(kept)._base.arrays())
    kept.unlink()
    with caplog.at_level("INFO", logger="rag.store"):
        migrated = IndexStore.load(store.docstore)
    assert kept.is_file() and not earlier.is_file()
    assert isinstance(migrated.sparse._base.rows, np.memmap)
    assert (
        migrated.sparse.search("harbour storms", 5)[1].tolist()
        == fresh.sparse.search("harbour storms", 5)[1].tolist()
    )


def test_title_context_makes_every_chunk_findable_by_its_document_title(small_settings, encoder):
    def found(store: IndexStore, query: str) -> set:
        hits = store.sparse.search(query, 10)[1].tolist()
        return {(store.chunks[i].doc_id, store.chunks[i].start) for i in hits if i in store.chunks}

    plain = open_index(small_settings, encoder)
    a_chunks = {(c.doc_id, c.start) for c in plain.chunks.values() if c.doc_id == "a.txt"}
    untitled = {k for k in a_chunks if not plain.documents["a.txt"].text[k[1] :].startswith("Harb")}
    assert untitled and not untitled & found(plain, "harbour")  # the title is in chunk 1 only

    titled = open_index(small_settings.model_copy(update={"chunk_context": "title"}), encoder)
    assert titled.docstore.meta("params")["chunk_context"] == "title"  # embedded again
    assert sorted(titled.chunks.values(), key=str) == sorted(plain.chunks.values(), key=str)
    assert untitled <= found(titled, "harbour")  # read and cited as before, found by the title


def test_searched_text_puts_the_title_before_a_chunk_that_lacks_it():
    from rag.chunking import Chunk, searched_text

    first = Chunk("d", 0, 25, "Harbour  Notes\n\nThe light")
    later = Chunk("d", 40, 60, "It was designed by")
    assert searched_text(later, "Harbour Notes", "none") == later.text
    assert searched_text(later, "Harbour Notes", "title") == "Harbour Notes\nIt was designed by"
    assert searched_text(first, "Harbour Notes", "title") == first.text  # no title twice
    assert searched_text(later, "  ", "title") == later.text
