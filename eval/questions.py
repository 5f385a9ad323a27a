"""Loading and validating question sets (JSONL, one question per line)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The dev set: the default of ``verbatim eval`` and ``verbatim bench``, and the tests' questions.
DEV_QUESTIONS = Path(__file__).resolve().parent / "questions" / "dev.jsonl"


class QuestionFileError(ValueError):
    """A question file cannot be used; the message names the file, the line and the problem."""


class Question(BaseModel):
    """One evaluation question; ``answers`` and ``evidence`` stand verbatim in ``doc``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    doc: str | None = None
    also_in: list[str] = Field(default_factory=list)
    answerable: bool
    type: str = ""
    evidence: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if not self.question.strip():
            raise ValueError("'question' is blank")
        if self.answerable:
            if not self.answers:
                raise ValueError("an answerable question needs at least one entry in 'answers'")
            if not all(a.strip() for a in self.answers):
                raise ValueError("'answers' holds an empty answer")
            if not self.doc:
                raise ValueError("an answerable question needs its 'doc'")
        elif self.answers:
            raise ValueError("an unanswerable question must have no 'answers'")
        if not self.type:
            self.type = "answerable" if self.answerable else "unanswerable"
        return self

    @property
    def accepted_docs(self) -> list[str]:
        """The documents whose text may support the answer: ``doc`` then ``also_in``."""
        return [d for d in [self.doc, *self.also_in] if d]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"field '{where}': {msg}" if where else msg)
    return "; ".join(parts)


def parse_questions(lines: list[str], source: str = "<questions>") -> list[Question]:
    """Questions from JSONL lines (blank lines skipped); :class:`QuestionFileError` otherwise."""
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{source}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise QuestionFileError(
                f"{source}:{lineno}: expected a JSON object, got {type(data).__name__}"
            )
        try:
            q = Question.model_validate(data)
        except ValidationError as exc:
            raise QuestionFileError(f"{source}:{lineno}: {_describe(exc)}") from None
        if q.id in seen:
            raise QuestionFileError(
                f"{source}:{lineno}: duplicate id {q.id!r} (first on line {seen[q.id]})"
            )
        seen[q.id] = lineno
        questions.append(q)
    if not questions:
        raise QuestionFileError(f"{source}: holds no questions")
    return questions


def load_questions(path: Path | str) -> list[Question]:
    """The questions of a JSONL file; :class:`QuestionFileError` names any bad line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"{path}: cannot read the question file ({exc})") from None
    return parse_questions(text.split("\n"), str(path))
