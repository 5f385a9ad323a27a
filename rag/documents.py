"""Reading a corpus folder into documents whose text is what every offset refers to."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm")

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
    """One source document. ``text`` is what offsets index; ``excluded`` spans are not indexed."""

    doc_id: str
    title: str
    text: str
    content_hash: str
    excluded: tuple[tuple[int, int], ...] = field(default=())

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
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return fallback


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


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


def read_document(path: Path, root: Path) -> Document | None:
    """Read one file; ``None`` (with a warning naming it) when it is unreadable or binary."""
    doc_id = path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("skipping unreadable file %s: %s", doc_id, exc)
        return None
    if _looks_binary(data):
        log.warning("skipping binary file %s", doc_id)
        return None
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("skipping %s: not valid UTF-8 text", doc_id)
        return None
    html_title = None
    if path.suffix.lower() in (".html", ".htm"):
        text, html_title = html_to_text(raw)
    else:
        text = raw.replace("\r\n", "\n")
    if not text.strip():
        log.warning("skipping empty document %s", doc_id)
        return None
    return Document(
        doc_id=doc_id,
        title=html_title or first_line_title(text, doc_id),
        text=text,
        content_hash=content_hash(data),
        excluded=boilerplate_spans(text),
    )


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
