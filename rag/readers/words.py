"""Content words: the lower-cased words of a text that carry meaning (no function words)."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"\w+")
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "did",
        "does",
        "do",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "into",
        "about",
    ]
)


def content_words(text: str, stem: int = 0) -> set[str]:
    """The words of ``text`` that are not stop words; ``stem`` > 0 cuts each to that many
    characters, a crude stemmer (``ambassadors`` and ``ambassador`` meet at 5)."""
    words = (w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOP_WORDS)
    return {w[:stem] if stem else w for w in words}


def overlap(question: str, text: str, stem: int = 0) -> float:
    """The share of the question's content words that occur in ``text`` (1.0 when it has none)."""
    q = _words(question, stem)
    return len(q & _words(text, stem)) / len(q) if q else 1.0


@lru_cache(maxsize=4096)
def _words(text: str, stem: int) -> frozenset[str]:
    # A reading scores ~20 spans a window against one question and a few sentences.
    return frozenset(content_words(text, stem))
