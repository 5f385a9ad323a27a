"""A phrase that names the document a question is about ("According to the Al Jazeera report,
...", "... (from the article on Lavrov's visit)"): found so that the reader reads the question
without it, because the passage holding the answer rarely repeats its document's name, and so
that retrieval can prefer the documents it names.

Only a phrase whose head is a kind of document (article, report, story, ...) is one: "according
to Oxfam" or "according to the census" ask what a source in the text says and are kept.
Contract: ``question == core`` when nothing is found, and ``core`` keeps a content word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.chunk_table import ChunkTable
from rag.readers.words import content_words
from rag.sparse import SparseIndex, terms_of

# Kinds of document a question may name its source by (the head noun of the phrase).
DOCUMENT_NOUNS = (
    "article",
    "report",
    "story",
    "piece",
    "post",
    "column",
    "editorial",
    "op-ed",
    "dispatch",
    "coverage",
    "write-up",
    "news item",
    "document",
    "text",
    "page",
)
_NOUN = r"(?:" + "|".join(re.escape(n) for n in DOCUMENT_NOUNS) + r")s?"
_LEAD = r"(?:according\s+to|as\s+(?:reported|stated|described|told)\s+(?:in|by)|in|from|per)"
# "the Al Jazeera report", "an article", "the piece about Lavrov's visit" (no comma inside).
_PHRASE = (
    r"(?:the|a|an|this|that|its|their)?\s*[^,;?()]{0,80}?\b" + _NOUN + r"\b"
    r"(?:\s+(?:on|about|by|from|in|of)\s+[^,;?()]{1,80}?)?"
)
# Words of the frame, not of the name ("according to the ... report").
_FRAME = frozenset(terms_of([" ".join(DOCUMENT_NOUNS) + " according reported per"])[0])
_LEADING = re.compile(r"^\s*" + _LEAD + r"\s+" + _PHRASE + r"\s*,\s*(?P<core>.+)$", re.I | re.S)
_TRAILING = re.compile(
    r"^(?P<core>.+?)\s*(?:,\s*|\(\s*)" + _LEAD + r"\s+" + _PHRASE + r"\s*\)?\s*(?P<end>[?.!]?)\s*$",
    re.I | re.S,
)


@dataclass(frozen=True)
class Attributed:
    """A question split into what it asks (``core``) and the phrase naming its document."""

    question: str
    core: str
    attribution: str | None  # None: the question names no document


def split_attribution(question: str) -> Attributed:
    """``question`` with a leading or trailing phrase that names its document taken out."""
    for pattern in (_LEADING, _TRAILING):
        m = pattern.match(question)
        if not m:
            continue
        core = m.group("core").strip()
        if pattern is _TRAILING:
            core = core.rstrip(" ,") + (m.group("end") or "")
        if content_words(core):
            phrase = question[: m.start("core")] + question[m.end("core") :]
            return Attributed(question, core[0].upper() + core[1:], phrase.strip(" ,()?.!"))
    return Attributed(question, question, None)


def named_documents(phrase: str, sparse: SparseIndex, chunks: ChunkTable) -> set[str]:
    """The documents whose chunks hold every word of the name in ``phrase`` ("Al Jazeera" of
    "according to the Al Jazeera report"), by the BM25 index's terms; empty when none does."""
    named: set[str] | None = None
    for term in set(terms_of([phrase])[0]) - _FRAME:
        held = chunks.doc_ids_of(sparse.ids_with(term))
        named = held if named is None else named & held
        if not named:
            return set()
    return named or set()
