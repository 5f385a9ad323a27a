"""Sentence-aware chunks sized in embedding tokens, each with exact character offsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.config import ChunkContext
from rag.documents import Document
from rag.sentences import split_sentences, strip_spans

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str


def searched_text(chunk: Chunk, title: str, context: ChunkContext = "none") -> str:
    """What ``chunk`` is embedded and BM25-indexed as: its text, after its document's ``title``
    with ``context="title"`` (unless the chunk already starts with the title)."""
    title = " ".join(title.split())
    if (
        context == "none"
        or not title
        or " ".join(chunk.text[: len(title) * 2].split()).startswith(title)
    ):
        return chunk.text
    return f"{title}\n{chunk.text}"


def _word_pieces(text: str, start: int, end: int, n_pieces: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at whitespace into about ``n_pieces`` equal parts."""
    target = max(1, (end - start) // n_pieces)
    pieces, pos = [], start
    while end - pos > target * 1.5:
        cut = text.rfind(" ", pos + 1, pos + target)
        if cut <= pos:
            cut = text.find(" ", pos + target, end)
        if cut == -1 or cut <= pos:
            break
        pieces.append((pos, cut))
        pos = cut + 1
        while pos < end and text[pos].isspace():
            pos += 1
    pieces.append((pos, end))
    return strip_spans(text, pieces)


class Chunker:
    """Packs whole sentences into chunks of at most ``max_tokens``, overlapping by about
    ``overlap_tokens`` worth of trailing sentences. A single sentence longer than the limit is
    split at whitespace."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int = 100, overlap_tokens: int = 30):
        if overlap_tokens >= max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def _units(self, text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
        """Sentences as (start, end, tokens), over-long ones split to fit."""
        sentences = [s for a, b in spans for s in split_sentences(text, a, b)]
        counts = self.count_tokens([text[s:e] for s, e in sentences]) if sentences else []
        units: list[tuple[int, int, int]] = []
        for (s, e), n in zip(sentences, counts, strict=True):
            if n <= self.max_tokens:
                units.append((s, e, n))
                continue
            pieces = _word_pieces(text, s, e, -(-n // self.max_tokens) + 1)
            piece_counts = self.count_tokens([text[a:b] for a, b in pieces])
            units.extend((a, b, c) for (a, b), c in zip(pieces, piece_counts, strict=True))
        return units

    def chunk_spans(self, text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """(start, end) of each chunk of ``text`` restricted to ``spans``."""
        units = self._units(text, spans)
        chunks: list[tuple[int, int]] = []
        i = 0
        while i < len(units):
            j, total = i, 0
            while j < len(units) and (j == i or total + units[j][2] <= self.max_tokens):
                total += units[j][2]
                j += 1
            chunks.append((units[i][0], units[j - 1][1]))
            if j >= len(units):
                break
            # Step back over trailing sentences worth at most overlap_tokens, always advancing.
            back, k = 0, j
            while k - 1 > i and back + units[k - 1][2] <= self.overlap_tokens:
                k -= 1
                back += units[k][2]
            i = k
        return chunks

    def chunk(self, document: Document) -> list[Chunk]:
        """Chunks of the document's indexable text."""
        text = document.text
        return [
            Chunk(document.doc_id, s, e, text[s:e])
            for s, e in self.chunk_spans(text, document.indexable_spans())
        ]
