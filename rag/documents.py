"""Reading a corpus folder into documents whose text is what every offset refers to."""

from __future__ import annotations

import hashlib
import logging
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from rag.formats import SUPPORTED_SUFFIXES, DocumentFormatError, Extracted, extract

log = logging.getLogger(__name__)

# Web furniture only occurs in text scraped from pages; PDF and Word files are kept whole.
_BOILERPLATE_FORMATS = ("text", "markdown", "html")

# A line that starts the web page's furniture (comment forms, "related" lists); from it to the
# end of the document nothing is the article. Matched against whole lines.
_BOILERPLATE_START = re.compile(
    r"^[ \t]*(Leave a Reply|Leave a Comment|You may also like|Related (Posts|Articles)"
    r"|Share this:|Post navigation)\b[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)


class CorpusError(ValueError):
    """The corpus folder is missing or holds no readable document."""


@dataclass(frozen=True)
class Document:
    """One source document. ``text`` is what offsets index; ``excluded`` spans are not indexed.

    ``pages`` holds the offset in ``text`` where each page starts (PDF); empty when unpaged.
    """

    doc_id: str
    title: str
    text: str
    content_hash: str
    excluded: tuple[tuple[int, int], ...] = field(default=())
    format: str = "text"
    pages: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        # Rows read back from JSON carry lists; tuples keep the document hashable and immutable.
        object.__setattr__(self, "excluded", tuple(tuple(s) for s in self.excluded))
        object.__setattr__(self, "pages", tuple(self.pages))

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset``; ``None`` for an unpaged document."""
        if not self.pages:
            return None
        return max(bisect_right(self.pages, offset), 1)

    def indexable_spans(self) -> list[tuple[int, int]]:
        """The (start, end) ranges of ``text`` that belong to the article proper."""
        spans, pos = [], 0
        for start, end in sorted(self.excluded):
            if start > pos:
                spans.append((pos, start))
            pos = max(pos, end)
        if pos < len(self.text):
            spans.append((pos, len(self.text)))
        return spans


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def boilerplate_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Spans of web boilerplate: from the first furniture line to the end of the text."""
    match = _BOILERPLATE_START.search(text)
    return ((match.start(), len(text)),) if match else ()


def first_line_title(text: str, fallback: str) -> str:
    """The first non-blank line, without a Markdown heading's leading ``#``s."""
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip() or line.strip()
    return fallback


def _document(doc_id: str, data: bytes, got: Extracted, title: str | None = None) -> Document:
    return Document(
        doc_id=doc_id,
        title=title or got.title or first_line_title(got.text, doc_id),
        text=got.text,
        content_hash=content_hash(data),
        excluded=boilerplate_spans(got.text) if got.format in _BOILERPLATE_FORMATS else (),
        format=got.format,
        pages=got.pages,
    )


def document_from_bytes(
    doc_id: str, name: str, data: bytes, title: str | None = None, warnings: list | None = None
) -> Document:
    """A document from an upload's bytes, its format from ``name``; DocumentFormatError if unusable.

    The title is ``title`` if given, else the file's own (HTML/PDF/.docx), else its first line.
    What extraction noticed (pages without text) is logged and appended to ``warnings``.
    """
    got = extract(name, data)
    for warning in got.warnings:
        log.warning("%s: %s", doc_id, warning)
    if warnings is not None:
        warnings.extend(got.warnings)
    return _document(doc_id, data, got, title)


def read_document(path: Path, root: Path) -> Document | None:
    """Read one file; ``None`` (with a warning naming it) when it is unreadable or unusable."""
    doc_id = path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("skipping unreadable file %s: %s", doc_id, exc)
        return None
    try:
        return document_from_bytes(doc_id, path.name, data)
    except DocumentFormatError as exc:
        log.warning("skipping %s [%s]: %s", doc_id, exc.code, exc)
        return None


def corpus_files(root: Path) -> list[Path]:
    """The supported files below ``root``, sorted, hidden files and folders left out."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder not found: {root}")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def file_hashes(root: Path) -> dict[str, str]:
    """doc_id -> content hash for every supported file, without parsing them."""
    hashes = {}
    for path in corpus_files(root):
        try:
            hashes[path.relative_to(root).as_posix()] = content_hash(path.read_bytes())
        except OSError:
            continue
    return hashes


def load_corpus(root: Path) -> list[Document]:
    """Every readable document below ``root``; a clear error when there is none."""
    docs = [d for p in corpus_files(root) if (d := read_document(p, root)) is not None]
    if not docs:
        raise CorpusError(
            f"no readable documents in {root} (looked for {', '.join(SUPPORTED_SUFFIXES)})"
        )
    return docs
