"""Lexical evidence: how much of a question's wording a candidate passage holds, a cheap second
look at the fused candidates that tells the passage about the question's subject from the many
that are merely near it (docs/studies/scale-hit-at-5.md)."""

from __future__ import annotations

import re
from functools import lru_cache

from rag.readers.words import STOP_WORDS

# Not rag.readers.words.overlap: the pairs need the text's word sequence, so one pass gives both.
_WORD = re.compile(r"[a-z0-9]+")


def lexical_evidence(question: str, text: str) -> float:
    """In [0, 2]: the share of the question's content words that ``text`` holds, plus the share
    of its adjacent word pairs (at least one of the two a content word) that ``text`` holds. A
    question without content words or pairs counts 1 for that part."""
    words, pairs = _question(question)
    tokens = _WORD.findall(text.lower())
    cover = len(words & set(tokens)) / len(words) if words else 1.0
    held = set(zip(tokens, tokens[1:], strict=False))
    return cover + (len(pairs & held) / len(pairs) if pairs else 1.0)


@lru_cache(maxsize=256)
def _question(question: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    words = _WORD.findall(question.lower())
    content = frozenset(w for w in words if w not in STOP_WORDS)
    pairs = frozenset(
        (a, b)
        for a, b in zip(words, words[1:], strict=False)
        if a not in STOP_WORDS or b not in STOP_WORDS
    )
    return content, pairs
