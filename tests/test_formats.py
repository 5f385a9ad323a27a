"""Document formats: PDF and Word files built with the real libraries, bad files, page markers."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from html import unescape
from pathlib import Path

import docx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from api.views import render_view
from rag.documents import (
    SUPPORTED_SUFFIXES,
    Document,
    DocumentFormatError,
    document_from_bytes,
    load_corpus,
)
from rag.formats import extract, format_of

SECOND_PAGE = "The keeper logged an inter-", "national signal at dawn on the ninth of March."
SENTENCE = "The keeper logged an international signal at dawn on the ninth of March."


def make_pdf(pages: list[list[str]], **canvas_options) -> bytes:
    """A PDF with one page per list of lines (an empty list is a blank page)."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, **canvas_options)
    for lines in pages:
        text = pdf.beginText(72, 770)
        text.setFont("Helvetica", 12)
        for line in lines:
            text.textLine(line)
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def make_docx(core_title: str = "") -> bytes:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_paragraph("Prepared for the harbour board.")
    document.add_heading("Tide Report", level=1)
    document.add_paragraph("High water was at 06:12.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Day", "Height"), ("Monday", "4.2 m")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Low water followed at noon.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "not an office document")
    return buf.getvalue()


def code_of(name: str, data: bytes) -> str:
    with pytest.raises(DocumentFormatError) as info:
        extract(name, data)
    assert str(info.value)  # every refusal says what to do
    return info.value.code


def test_two_page_pdf_has_page_offsets_and_joins_hyphenated_words(tmp_path: Path):
    path = tmp_path / "keeper.pdf"
    lines = ["Harbour log", "Calm   seas all week, and the keeper", "wrote little else."]
    path.write_bytes(make_pdf([lines, SECOND_PAGE]))
    got = extract(path.name, path.read_bytes())
    assert got.format == "pdf"
    # a short line ends its paragraph; a full one runs on into the next
    assert (
        got.text
        == f"Harbour log\n\nCalm seas all week, and the keeper wrote little else.\n\n{SENTENCE}"
    )
    assert got.pages == (0, got.text.index("The keeper"))
    assert got.warnings == ()
    assert got.title is None  # reportlab's placeholder "untitled" is not a title

    doc = document_from_bytes("keeper.pdf", path.name, path.read_bytes())
    at = doc.text.index(SENTENCE)
    assert (doc.page_of(0), doc.page_of(at), doc.page_of(len(doc.text) - 1)) == (1, 2, 2)
    assert doc.page_of(at - 1) == 1  # the separator belongs to the page before
    assert doc.format == "pdf" and doc.excluded == ()
    assert doc.title == "Harbour log"
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_lines_of_a_paragraph_are_joined_and_list_items_kept_apart():
    lines = [
        "The council met on Monday and agreed, after a long debate, that",
        "the harbour would reopen in spring. Three measures were adopted:",
        "- a new pier,",
        "- a second crane.",
    ]
    got = extract("x.pdf", make_pdf([lines]))
    assert got.text == (
        "The council met on Monday and agreed, after a long debate, that the harbour would "
        "reopen in spring. Three measures were adopted:\n\n- a new pier,\n\n- a second crane."
    )


def test_hyphen_is_kept_when_the_next_line_starts_a_name():
    got = extract("x.pdf", make_pdf([["Talks between Sino-", "Russian delegates."]]))
    assert got.text == "Talks between Sino-Russian delegates."


def test_pdf_metadata_title_is_used():
    data = make_pdf([["Body text."]])
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.add_metadata({"/Title": "Annual Tide Tables"})
    out = io.BytesIO()
    writer.write(out)
    assert extract("t.pdf", out.getvalue()).title == "Annual Tide Tables"
    assert document_from_bytes("t.pdf", "t.pdf", out.getvalue()).title == "Annual Tide Tables"
    assert document_from_bytes("t.pdf", "t.pdf", out.getvalue(), title="Mine").title == "Mine"


def test_blank_pages_are_warned_about_and_keep_their_numbers():
    got = extract("scan.pdf", make_pdf([["First page."], [], [], ["Fourth page."]]))
    assert got.warnings == ("pages 2 and 3 hold no text (scanned images?); not searchable",)
    doc = Document("d", "t", got.text, "h", pages=got.pages, format="pdf")
    assert doc.page_of(got.text.index("Fourth")) == 4
    assert len(doc.pages) == 4


def test_pdf_without_any_text_is_empty_and_says_ocr_is_not_supported():
    with pytest.raises(DocumentFormatError, match="OCR") as info:
        extract("scan.pdf", make_pdf([[], []]))
    assert info.value.code == "empty_document"


def test_password_protected_pdf_is_refused_but_an_owner_only_lock_is_read():
    from reportlab.lib.pdfencrypt import StandardEncryption

    assert code_of("secret.pdf", make_pdf([["Hidden."]], encrypt="secret")) == (
        "encrypted_document"
    )
    owner_only = StandardEncryption("", ownerPassword="owner", canPrint=0)
    assert extract("locked.pdf", make_pdf([["Readable."]], encrypt=owner_only)).text == (
        "Readable."
    )


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("cut.pdf", make_pdf([["Some text."]])[:300], "corrupt_document"),
        ("archive.pdf", zip_bytes(), "corrupt_document"),
        ("header.pdf", b"%PDF-1.7\n garbage", "corrupt_document"),
        ("nothing.pdf", b"", "empty_document"),
        ("archive.docx", zip_bytes(), "corrupt_document"),
        ("cut.docx", make_docx()[:500], "corrupt_document"),
        ("plain.docx", b"just text", "corrupt_document"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_text"),
        ("latin1.md", "café".encode("latin-1"), "not_text"),
        ("blank.txt", b" \n\t\n", "empty_document"),
        ("empty.html", b"<html><script>x()</script></html>", "empty_document"),
        ("sheet.xlsx", b"x", "unsupported_format"),
        ("README", b"x", "unsupported_format"),
    ],
)
def test_unusable_files_raise_a_coded_error(name, data, code):
    assert code_of(name, data) == code


def test_format_of_is_case_insensitive_and_names_the_supported_suffixes():
    assert format_of("A/B/Report.PDF") == "pdf"
    assert format_of("notes.Docx") == "docx"
    assert format_of("page.HTM") == "html"
    with pytest.raises(DocumentFormatError, match=re.escape(", ".join(SUPPORTED_SUFFIXES))):
        format_of("slides.pptx")


def test_docx_paragraphs_and_table_rows_in_order_with_heading_title():
    got = extract("tide.docx", make_docx())
    assert got.format == "docx" and got.pages == ()
    assert got.text == (
        "Prepared for the harbour board.\n\nTide Report\n\nHigh water was at 06:12.\n\n"
        "Day | Height\nMonday | 4.2 m\n\nLow water followed at noon."
    )
    assert got.title == "Tide Report"
    assert extract("tide.docx", make_docx(core_title="Harbour Tides")).title == "Harbour Tides"


def test_corpus_with_pdf_docx_and_a_bad_file_loads_the_good_ones(small_corpus: Path, caplog):
    (small_corpus / "log.pdf").write_bytes(make_pdf([["Page one."], SECOND_PAGE]))
    (small_corpus / "tide.docx").write_bytes(make_docx())
    (small_corpus / "broken.pdf").write_bytes(zip_bytes())
    with caplog.at_level(logging.WARNING):
        docs = {d.doc_id: d for d in load_corpus(small_corpus)}
    assert sorted(docs) == ["a.txt", "c.html", "log.pdf", "sub/b.md", "tide.docx"]
    assert "broken.pdf" in caplog.text and "corrupt_document" in caplog.text
    assert docs["log.pdf"].page_of(docs["log.pdf"].text.index(SENTENCE)) == 2
    assert docs["tide.docx"].title == "Tide Report" and docs["tide.docx"].page_of(0) is None
    assert docs["a.txt"].format == "text" and docs["c.html"].format == "html"


def test_document_from_json_row_is_hashable_with_tuples():
    doc = Document(**{"doc_id": "d", "title": "t", "text": "ab", "content_hash": "h",
                      "excluded": [[0, 1]], "format": "pdf", "pages": [0, 1]})  # fmt: skip
    assert doc.pages == (0, 1) and doc.excluded == ((0, 1),)
    hash(doc)


@given(
    pages=st.lists(st.integers(0, 200), min_size=1, max_size=8).map(lambda p: (0, *sorted(p))),
    offset=st.integers(0, 220),
)
def test_page_of_agrees_with_a_linear_scan(pages, offset):
    doc = Document("d", "t", "x" * 220, "h", pages=pages)
    expected = max(i for i, start in enumerate(pages, start=1) if start <= offset)
    assert doc.page_of(offset) == expected


_MARK = re.compile(r'<mark id="cited">(.*?)</mark>', re.S)
_MARKER = re.compile(r'<span class="page" id="page-(\d+)" aria-label="Page \1">— page \1 —</span>')


def view_body(doc: Document, start: int | None, end: int | None) -> str:
    html = render_view(doc, start, end).body.decode()
    return html.split('<main id="text">', 1)[1].split("</main>", 1)[0]


def test_view_shows_page_markers_and_marks_a_span_across_a_page_boundary():
    text = "First page ends here.\n\nSecond <page> & more."
    doc = Document("d.pdf", "D", text, "h", format="pdf", pages=(0, text.index("Second")))
    start, end = text.index("ends"), text.index("&") + 1
    response = render_view(doc, start, end)
    html = response.body.decode()
    assert "2 pages" in html and "page 1, characters" in html
    assert "nonce-" in response.headers["content-security-policy"]
    body = view_body(doc, start, end)
    assert [int(n) for n in _MARKER.findall(body)] == [1, 2]
    assert body.index('id="page-1"') < body.index("First")
    (marked,) = _MARK.findall(body)
    assert 'id="page-2"' in marked  # the marker sits inside the span; user-select skips it
    assert unescape(_MARKER.sub("", marked)) == text[start:end]
    assert unescape(_MARKER.sub("", _MARK.sub(r"\1", body))) == text


def test_unpaged_view_has_no_markers():
    doc = Document("a.txt", "A", "plain <b>text</b>", "h")
    html = render_view(doc, 0, 5).body.decode()
    assert 'class="page"' not in html.split("<main", 1)[1] and "pages" not in html
    assert _MARK.findall(html) == ["plain"]


@given(
    text=st.text(alphabet="ab<&\n", max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    span=st.tuples(st.integers(0, 40), st.integers(0, 40)),
)
def test_view_body_always_round_trips_the_text_and_the_span(text, cuts, span):
    n = len(text)
    pages = (0, *sorted(min(c, n) for c in cuts))
    start, end = sorted(min(s, n) for s in span)
    if start == end:
        return
    doc = Document("d", "t", text, "h", pages=pages)
    body = view_body(doc, start, end)
    assert len(_MARKER.findall(body)) == len(pages)
    (marked,) = _MARK.findall(body)
    assert unescape(_MARKER.sub("", marked)) == text[start:end]
    assert unescape(_MARKER.sub("", _MARK.sub(r"\1", body))) == text
