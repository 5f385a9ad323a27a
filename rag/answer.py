"""The Answer: the one JSON contract shared by the CLI, the HTTP API and the evaluation harness."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Passage(BaseModel):
    """A retrieved chunk: ``document.text[start:end] == text``."""

    doc_id: str
    title: str
    start: int
    end: int
    text: str
    score: float
    page: int | None = Field(
        None,
        description="1-based page of the document where the passage starts; "
        "null when the document has no pages.",
    )


class Citation(BaseModel):
    """Where the answer stands: ``document.text[start:end] == answer``."""

    doc_id: str
    title: str
    text: str = Field(description="The cited words, verbatim.")
    start: int
    end: int
    passage: str
    passage_start: int
    passage_end: int
    score: float
    sentence: str = Field(description="The source sentence that holds the answer.")
    sentence_start: int
    sentence_end: int
    page: int | None = Field(
        None,
        description="1-based page of the document where the cited span starts; "
        "null when the document has no pages.",
    )


class Timings(BaseModel):
    retrieve: float
    read: float
    total: float


class Answer(BaseModel):
    """An extractive answer with its citations, or an abstention (``answer`` null)."""

    question: str
    answer: str | None
    abstained: bool
    score: float = Field(ge=0.0, le=1.0, description="Confidence in [0, 1].")
    citations: list[Citation]
    passages: list[Passage]
    timings_ms: Timings
    alternatives: list[Citation] = Field(default_factory=list)
