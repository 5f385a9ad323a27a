"""Trimming a span to the words of an answer: no outer whitespace, dangling punctuation or
lone quotes."""

from __future__ import annotations

_TRAIL = set(",;:!?")
_QUOTES = {'"': '"', "“": "”", "‘": "’", "'": "'", "(": ")", "[": "]", "«": "»"}
_CLOSERS = {v: k for k, v in _QUOTES.items()}


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` of ``text`` without outer whitespace, trailing punctuation, lone quotes.

    Only narrows the span, so ``text[start:end]`` stays a verbatim slice. A final ``.`` is kept
    after abbreviations (``U.S.``, ``J.``) and dropped otherwise.
    """
    for _ in range(4):
        before = (start, end)
        while start < end and (text[start].isspace() or text[start] in ",;:."):
            start += 1
        while end > start and (text[end - 1].isspace() or text[end - 1] in _TRAIL):
            end -= 1
        if end > start and text[end - 1] == "." and not _is_abbreviation(text[start:end]):
            end -= 1
        span = text[start:end]
        if len(span) > 2 and span[0] in _QUOTES and span[-1] == _QUOTES[span[0]]:
            start, end = start + 1, end - 1  # wrapped in a pair: the words inside
        elif span and span[0] in _QUOTES and _QUOTES[span[0]] not in span[1:]:
            start += 1
        elif span and span[-1] in _CLOSERS and _CLOSERS[span[-1]] not in span[:-1]:
            end -= 1
        if (start, end) == before:
            break
    return start, end


def _is_abbreviation(span: str) -> bool:
    last = span.split()[-1] if span.split() else ""
    return last.count(".") > 1 or (len(last) == 2 and last[0].isupper())
