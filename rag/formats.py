"""Turning a file's bytes (text, Markdown, HTML, PDF, Word .docx) into text with page offsets."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
Format = Literal["text", "markdown", "html", "pdf", "docx"]

_FORMATS: dict[str, Format] = {
    ".txt": "text",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}

# A word split at a line end: a letter, "-", the break, then a letter (checked lowercase in code).
_HYPHEN_BREAK = re.compile(r"([^\W\d_])-[ \t]*\n[ \t]*([^\W\d_])")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# A line that starts a list item: it begins a line of its own even inside a paragraph.
_ITEM = re.compile(r"^([-–—•*▪●]\s|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s)")
# Titles PDF producers write when the author gave none (reportlab writes "untitled").
_PLACEHOLDER_TITLES = {"", "untitled", "untitled document", "title"}


class DocumentFormatError(ValueError):
    """A file that cannot become a document; ``code`` is machine-readable, the message says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Extracted:
    """A file's text (what every offset refers to), its title, and where each page starts."""

    text: str
    title: str | None
    format: Format
    pages: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()


def format_of(name: str) -> Format:
    """The format a file name's suffix names, case-insensitive."""
    suffix = PurePath(name).suffix.lower()
    if suffix not in _FORMATS:
        shown = f'"{suffix}"' if suffix else "no suffix"
        raise DocumentFormatError(
            "unsupported_format",
            f"{name!r} has {shown}; supported files end in {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return _FORMATS[suffix]


def extract(name: str, data: bytes) -> Extracted:
    """The text of ``data`` read as the format ``name``'s suffix says; DocumentFormatError if not."""
    fmt = format_of(name)
    if not data.strip():
        raise DocumentFormatError("empty_document", f"{name!r} is empty; it holds no text")
    if fmt == "pdf":
        extracted = _extract_pdf(name, data)
    elif fmt == "docx":
        extracted = _extract_docx(name, data)
    else:
        extracted = _extract_text(name, data, fmt)
    if not extracted.text.strip():
        raise DocumentFormatError("empty_document", f"{name!r} holds no text")
    return extracted


def html_to_text(html: str) -> tuple[str, str | None]:
    """Visible text of an HTML page (scripts, styles and navigation dropped) and its <title>."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else None
    for tag in soup(["script", "style", "noscript", "template", "nav", "header", "footer", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    text = "\n\n".join(line for line in lines if line)
    return text, title or None


def _extract_text(name: str, data: bytes, fmt: Format) -> Extracted:
    # A NUL byte never occurs in text; it means an image or archive given a text suffix.
    if b"\x00" in data:
        raise DocumentFormatError(
            "not_text", f"{name!r} is binary, not text; save it as UTF-8 text or upload a PDF/.docx"
        )
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentFormatError(
            "not_text", f"{name!r} is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8"
        ) from None
    if fmt == "html":
        text, title = html_to_text(raw)
        return Extracted(text=text, title=title, format=fmt)
    return Extracted(text=raw.replace("\r\n", "\n"), title=None, format=fmt)


def _corrupt(name: str, kind: str, exc: BaseException | None = None) -> DocumentFormatError:
    why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return DocumentFormatError(
        "corrupt_document",
        f"{name!r} is not a readable {kind} file{why}; check that it opens, or re-export it",
    )


def clean_pdf_page(text: str) -> str:
    """One page's extracted text: hyphenated line breaks joined, whitespace tidied per line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK.sub(lambda m: m[1] + m[2] if m[2].islower() else m[0], text)
    lines = [_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", _unwrap(lines)).strip()


def _unwrap(lines: list[str]) -> str:
    """Lines joined into paragraphs: a PDF breaks every line, and a sentence cut by a line
    break would be split (and chunked) in two. A line well short of the page's full width
    ends its paragraph; an empty line or a list item starts a new one."""
    widths = sorted(len(line) for line in lines if line)
    full = widths[int(0.9 * (len(widths) - 1))] if widths else 0
    out: list[str] = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        out.append(line)
        if not line or not after:
            out.append("\n")
        elif len(line) < 0.75 * full or _ITEM.match(after):
            out.append("\n\n")
        elif line.endswith("-"):  # a kept hyphen ("Sino-" + "Russian")
            out.append("")
        else:
            out.append(" ")
    return "".join(out)


def _extract_pdf(name: str, data: bytes) -> Extracted:
    from pypdf import PasswordType, PdfReader

    # pypdf raises many types (PdfReadError, ValueError, KeyError, ...) on malformed input;
    # any of them means the file is unusable, and the caller must get a clean 4xx, never a 500.
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:  # e.g. AES without the optional crypto library
                opened = False
            if not opened:
                raise DocumentFormatError(
                    "encrypted_document",
                    f"{name!r} is password-protected; remove the password and upload it again",
                )
        pages = list(reader.pages)
    except DocumentFormatError:
        raise
    except Exception as exc:
        raise _corrupt(name, "PDF", exc) from None
    if not pages:
        raise DocumentFormatError("empty_document", f"{name!r} has no pages")

    parts, length, starts, blank, unreadable = [], 0, [], [], []
    for number, page in enumerate(pages, start=1):
        try:
            page_text = clean_pdf_page(page.extract_text() or "")
        except Exception:  # one damaged page should not lose the rest of the document
            page_text = ""
            unreadable.append(number)
        if not page_text and number not in unreadable:
            blank.append(number)
        if page_text and parts:
            parts.append("\n\n")
            length += 2
        # A blank page starts where the text so far ends: offsets stay sorted for bisect.
        starts.append(length)
        if page_text:
            parts.append(page_text)
            length += len(page_text)

    text = "".join(parts)
    if not text:
        raise DocumentFormatError(
            "empty_document",
            f"{name!r} has no extractable text (a scanned document?); OCR is not supported, "
            "so upload a PDF with a text layer",
        )
    warnings = []
    if blank:
        verb = "holds" if len(blank) == 1 else "hold"
        warnings.append(f"{_pages_list(blank)} {verb} no text (scanned images?); not searchable")
    if unreadable:
        warnings.append(f"{_pages_list(unreadable)} could not be read; not searchable")
    return Extracted(
        text=text,
        title=_pdf_title(reader),
        format="pdf",
        pages=tuple(starts),
        warnings=tuple(warnings),
    )


def _pdf_title(reader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken info dictionary only costs the title
        return None
    if not isinstance(title, str) or title.strip().lower() in _PLACEHOLDER_TITLES:
        return None
    return title.strip()


def _pages_list(numbers: list[int]) -> str:
    """ "page 3" or "pages 3, 5 and 7"."""
    if len(numbers) == 1:
        return f"page {numbers[0]}"
    listed = ", ".join(str(n) for n in numbers[:-1])
    return f"pages {listed} and {numbers[-1]}"


def _extract_docx(name: str, data: bytes) -> Extracted:
    import docx
    from docx.table import Table

    # python-docx surfaces zipfile, lxml and KeyError failures on bad input; all mean "corrupt".
    try:
        document = docx.Document(io.BytesIO(data))
        blocks, heading = [], None
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                blocks.append(_table_text(item))
                continue
            paragraph = item.text.replace("\r\n", "\n").strip()
            if paragraph and heading is None and _is_heading(item):
                heading = paragraph
            blocks.append(paragraph)
        core_title = (document.core_properties.title or "").strip()
    except Exception as exc:
        raise _corrupt(name, "Word (.docx)", exc) from None
    text = "\n\n".join(b for b in blocks if b)
    return Extracted(text=text, title=core_title or heading, format="docx")


def _is_heading(paragraph) -> bool:
    style = getattr(paragraph.style, "name", None) or ""
    return style == "Title" or style.startswith("Heading")


def _table_text(table) -> str:
    """One line per row, cells in order and separated by " | ", merged cells once."""
    rows = []
    for row in table.rows:
        cells, seen = [], []
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if any(cell._tc is tc for tc in seen):
                continue
            seen.append(cell._tc)
            value = " ".join(cell.text.split())
            if value:
                cells.append(value)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)
