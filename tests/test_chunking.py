"""Chunks are sentence-aware, sized in model tokens, and offset-exact."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import Chunker
from rag.config import PROJECT_ROOT
from rag.documents import Document, load_corpus
from rag.sentences import split_sentences


def test_seed_chunks_are_offset_exact_and_within_size(encoder):
    chunker = Chunker(encoder.count_tokens, max_tokens=100, overlap_tokens=30)
    for doc in load_corpus(PROJECT_ROOT / "seeds"):
        chunks = chunker.chunk(doc)
        assert chunks
        for c in chunks:
            assert doc.text[c.start : c.end] == c.text
            assert encoder.count_tokens([c.text])[0] <= 100 + 8  # joins may add a token or two
        starts = [c.start for c in chunks]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        # Consecutive chunks overlap or touch: no article sentence falls between them.
        for a, b in zip(chunks, chunks[1:], strict=False):
            assert b.start <= a.end or not doc.text[a.end : b.start].strip()


def test_chunks_end_on_sentence_boundaries(encoder):
    doc = next(d for d in load_corpus(PROJECT_ROOT / "seeds") if d.doc_id.startswith("003"))
    sentence_ends = {e for _, e in split_sentences(doc.text)}
    for c in Chunker(encoder.count_tokens, 100, 30).chunk(doc):
        assert c.end in sentence_ends


def test_abbreviations_and_initials_do_not_split_sentences():
    text = "Mr. Smith met Dr. J. Brown in the U.S. capital. They talked. Then it rained!"
    got = [text[s:e] for s, e in split_sentences(text)]
    assert got == [
        "Mr. Smith met Dr. J. Brown in the U.S. capital.",
        "They talked.",
        "Then it rained!",
    ]


_text = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
        st.sampled_from([". ", "! ", "?\n", "\n\n", "Mr. ", " e.g. ", "“Quote.” ", "a" * 300]),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text, size=st.integers(8, 64), overlap=st.integers(0, 7))
def test_property_every_chunk_is_a_verbatim_slice(encoder, text, size, overlap):
    doc = Document("x.txt", "x", text, "h")
    for c in Chunker(encoder.count_tokens, max_tokens=size, overlap_tokens=overlap).chunk(doc):
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text


@settings(max_examples=150, deadline=None)
@given(text=_text)
def test_property_sentences_cover_all_non_space_text(text):
    spans = split_sentences(text)
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
