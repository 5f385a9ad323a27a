"""The reader interface: any reader that returns spans of the passages slots into the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rag.answer import Passage


@dataclass(frozen=True)
class Span:
    """A candidate answer: ``passages[passage_index]`` holds document offsets [start, end)."""

    passage_index: int
    start: int  # offsets in the document, not the passage
    end: int
    text: str
    score: float  # calibrated, in [0, 1]


def overlaps_kept(
    kept: list[Span], passages: list[Passage], doc_id: str, start: int, end: int
) -> bool:
    """Whether ``[start, end)`` of ``doc_id`` overlaps a ``kept`` span of the same document
    (``passages`` holds the kept spans' passages)."""
    return any(
        passages[k.passage_index].doc_id == doc_id and k.start < end and start < k.end for k in kept
    )


@dataclass(frozen=True)
class Reading:
    """What a reader makes of the passages: best spans first; ``abstain`` when none holds."""

    spans: list[Span]
    abstain: bool
    score: float  # confidence in the best span (or in the abstention's complement), [0, 1]


# (question, its passages best first, the retrieval rank of the first passage)
ReadItem = tuple[str, list[Passage], int]


class Reader(Protocol):
    """Cheap to construct; ``warm_up()`` loads heavy weights; ``read()`` is pure."""

    def warm_up(self) -> None: ...

    def read(self, question: str, passages: list[Passage], first_rank: int = 0) -> Reading:
        """Spans of ``passages``, whose retrieval ranks start at ``first_rank``."""
        ...

    def read_many(self, items: list[ReadItem]) -> list[Reading]:
        """:meth:`read` of each item, sharing the model's batches where the reader can."""
        ...
