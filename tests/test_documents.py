"""Reading corpora: ids, titles, HTML, boilerplate, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT
from rag.documents import CorpusError, load_corpus

SEEDS = PROJECT_ROOT / "seeds"


def test_seed_documents_keep_their_file_names_and_titles():
    docs = {d.doc_id: d for d in load_corpus(SEEDS)}
    assert sorted(docs) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert docs["002_f41d54b1f0163c00.txt"].title == "Expanding Sino-Russian cooperation"
    for d in docs.values():
        assert d.text == (SEEDS / d.doc_id).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("doc_id", "marker"),
    [
        ("000_921856a62ede8ee5.txt", "Connecting to %s"),
        ("001_0de572d7f595036a.txt", "Leave a Comment"),
        ("004_600d39537292fdeb.txt", "Leave a Reply"),
    ],
)
def test_web_boilerplate_is_excluded_without_rewriting_the_text(doc_id, marker):
    doc = next(d for d in load_corpus(SEEDS) if d.doc_id == doc_id)
    assert marker in doc.text  # the text itself is untouched
    indexable = "".join(doc.text[a:b] for a, b in doc.indexable_spans())
    assert marker not in indexable
    assert "You may also like" not in indexable
    assert len(indexable) > 0.8 * len(doc.text)


def test_txt_md_and_html_with_nested_ids(small_corpus: Path):
    docs = {d.doc_id: d for d in load_corpus(small_corpus)}
    assert sorted(docs) == ["a.txt", "c.html", "sub/b.md"]
    assert docs["a.txt"].title == "Harbour Notes"
    assert docs["sub/b.md"].title == "Orchard Almanac"  # a Markdown heading without its #
    html = docs["c.html"]
    assert html.title == "River Log"
    assert "Olu Brennan" in html.text
    assert "var x" not in html.text and "color:red" not in html.text and "Home |" not in html.text


def test_binary_and_undecodable_files_are_skipped_with_a_warning(small_corpus: Path, caplog):
    (small_corpus / "photo.txt").write_bytes(b"\x89PNG\x00\x00\x01\x02")
    (small_corpus / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        docs = load_corpus(small_corpus)
    assert {d.doc_id for d in docs} == {"a.txt", "c.html", "sub/b.md"}
    assert "photo.txt" in caplog.text and "latin1.txt" in caplog.text


def test_empty_or_missing_corpus_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CorpusError, match="no readable documents"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "nowhere")
