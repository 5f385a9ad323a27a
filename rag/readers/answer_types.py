"""The type of answer a question asks for (a number, a date, a person) and whether a span has
it."""

from __future__ import annotations

import re

_NUMERIC_Q = re.compile(
    r"\b(how (many|much|long|old|far|often|big|large|tall|high)|when|what (year|date|time|"
    r"percentage|percent|century|decade|day|month|age|number)|which (year|century|decade|day|"
    r"month)|in what year)\b",
    re.IGNORECASE,
)
_PERSON_Q = re.compile(r"^\W*(who|whom|whose)\b|\b(by whom|to whom)\b", re.IGNORECASE)
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|thousand|million|billion|trillion|dozen|half|once|twice|first|second|third|"
    "century|centuries|decade|decades|year|years|daily|weekly|monthly|annually"
)
_NUMERIC_A = re.compile(rf"\d|\b({_MONTHS}|{_NUMBER_WORDS})\b", re.IGNORECASE)
_DATE_A = re.compile(rf"\d|^\W*({_MONTHS})\b", re.IGNORECASE)
_CAPITALISED_A = re.compile(r"^\W*(the\s+)?[A-Z]")


def answer_type_fit(question: str, answer: str) -> int:
    """+1 when the answer has the type the question asks for, -1 when not, 0 when no type."""
    if _PERSON_Q.search(question):
        person = _CAPITALISED_A.match(answer) and not _DATE_A.search(answer)
        return 1 if person else -1
    if _NUMERIC_Q.search(question):
        return 1 if _NUMERIC_A.search(answer) else -1
    return 0
