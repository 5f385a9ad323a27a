"""Sentence boundaries as character spans, so every sentence maps back to its document."""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "col", "lt", "sgt", "capt",
    "gov", "sen", "rep", "pres", "vs", "etc", "inc", "ltd", "co", "corp", "no", "fig", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e",
    "u.s", "u.k", "u.n", "approx", "dept", "est", "min", "max",
}  # fmt: skip

# End punctuation, optional closing quotes/brackets, then whitespace: a candidate boundary.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_PARAGRAPH = re.compile(r"\n\s*\n|\n")


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` ends an abbreviation or an initial rather than a sentence."""
    start = dot
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot].lower()
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    return len(word) == 1 and text[start].isupper()  # an initial such as "J."


def _split_line(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    for m in _BOUNDARY.finditer(text, start, end):
        stop = m.end()
        if (
            m.group().startswith(".")
            and m.end() - m.start() == 1
            and _is_abbreviation(text, m.start())
        ):
            continue
        nxt = stop
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt < end and text[nxt].islower():
            continue  # "e.g. this" or an ellipsis inside a sentence
        spans.append((pos, stop))
        pos = stop
    spans.append((pos, end))
    return spans


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]``, whitespace trimmed, empty ones dropped.

    Lines are boundaries too (news text puts headings and paragraphs on their own lines).
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    line_start = start
    for m in _PARAGRAPH.finditer(text, start, end):
        spans.extend(_split_line(text, line_start, m.start()))
        line_start = m.end()
    spans.extend(_split_line(text, line_start, end))
    return strip_spans(text, spans)


def strip_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans without outer whitespace; those left empty are dropped."""
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def sentence_around(sentences: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to the sentences (``(start, end)`` pairs, in order) it touches:
    the one rule for "the sentence of an answer", in the reader's features and in citations."""
    a = next((s for s, e in sentences if s <= start < e), start)
    b = next((e for s, e in sentences if s < end <= e), end)
    return min(a, start), max(b, end)
