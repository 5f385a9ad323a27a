"""The HTTP API's request and response bodies (the Answer contract plus what HTTP adds)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from rag.answer import Answer, Citation
from rag.config import RetrievalMode, field_bounds

TOP_K_MIN, TOP_K_MAX = field_bounds("top_k")


def view_url(doc_id: str, start: int | None = None, end: int | None = None) -> str:
    """The document view's path, with the span to highlight when there is one."""
    url = f"/documents/{quote(doc_id)}/view"
    return url if start is None or end is None else f"{url}?start={start}&end={end}"


class AskRequest(BaseModel):
    """A question to answer from the documents."""

    # Strict: "5", 5.0 or true is not a top_k, and 42 is not a question.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "question": "Which anniversary of their diplomatic relations were China "
                    "and Russia marking at the time of Lavrov's visit to China?",
                    "top_k": 5,
                    "mode": "hybrid",
                }
            ]
        },
    )

    # Documented, not checked here: the pipeline validates a question, once (QuestionError).
    question: str = Field(
        description="The question, in plain words: at least one word of two or more letters "
        "or digits that is not a function word such as 'what', 'is' or 'the'.",
        json_schema_extra={"minLength": 2, "maxLength": 500, "pattern": r"\w\w"},
    )
    top_k: int | None = Field(
        None,
        ge=TOP_K_MIN,
        le=TOP_K_MAX,
        description=(
            "Passages to retrieve and read (default: the server's); when the reader is unsure "
            "over them, it reads the server's second_pass_top_k once more."
        ),
    )
    mode: RetrievalMode | None = Field(
        None, description="Retrieval mode (default: the server's, normally hybrid)."
    )


class LinkedCitation(Citation):
    """A citation plus ``url``: the document view with the cited span highlighted."""

    url: str = Field(description="Path of the document view with this span highlighted.")

    @classmethod
    def of(cls, citation: Citation) -> LinkedCitation:
        return cls(
            **citation.model_dump(), url=view_url(citation.doc_id, citation.start, citation.end)
        )


_CITATION_EXAMPLE = {
    "doc_id": "003_40868c46990d1f75.txt",
    "title": "Asia China Europe National Security News Politics Russia World News",
    "text": "75th",
    "start": 2982,
    "end": 2986,
    "passage": "Lavrov’s two-day official visit to China comes as the two nations mark the 75th "
    "anniversary of their diplomatic relations.",
    "passage_start": 2907,
    "passage_end": 3029,
    "score": 0.91,
    "sentence": "Lavrov’s two-day official visit to China comes as the two nations mark the 75th "
    "anniversary of their diplomatic relations.",
    "sentence_start": 2907,
    "sentence_end": 3029,
    "url": "/documents/003_40868c46990d1f75.txt/view?start=2982&end=2986",
}


class AskResponse(Answer):
    """The Answer contract, each citation with its ``url``, plus the request's id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "5f0c6a3e9b2d4c1e8a7f6b5c4d3e2f10",
                    "question": "Which anniversary of their diplomatic relations were China "
                    "and Russia marking at the time of Lavrov's visit to China?",
                    "answer": "75th",
                    "abstained": False,
                    "score": 0.91,
                    "citations": [_CITATION_EXAMPLE],
                    "passages": [
                        {
                            "doc_id": "003_40868c46990d1f75.txt",
                            "title": _CITATION_EXAMPLE["title"],
                            "start": 2907,
                            "end": 3029,
                            "text": _CITATION_EXAMPLE["passage"],
                            "score": 0.993,
                        }
                    ],
                    "timings_ms": {"retrieve": 12.4, "read": 35.1, "total": 47.5},
                    "alternatives": [],
                }
            ]
        }
    )

    request_id: str = Field(description="Also sent as the X-Request-ID header.")
    citations: list[LinkedCitation]  # type: ignore[assignment]
    alternatives: list[LinkedCitation] = Field(default_factory=list)  # type: ignore[assignment]

    @classmethod
    def of(cls, answer: Answer, request_id: str) -> AskResponse:
        data = answer.model_dump(exclude={"citations", "alternatives"})
        return cls(
            **data,
            request_id=request_id,
            citations=[LinkedCitation.of(c) for c in answer.citations],
            alternatives=[LinkedCitation.of(c) for c in answer.alternatives],
        )


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    length: int = Field(description="Characters of text (what offsets index).")
    chunks: int = Field(description="Passages the document is indexed as.")
    url: str = Field(description="Path of the document view.")
    format: str = Field(description="text, markdown, html, pdf or docx.")
    pages: int | None = Field(description="Pages of a PDF; null when the format has none.")
    origin: Literal["folder", "upload"] = Field(
        description="folder: kept in step with the corpus folder; upload: sent through the API."
    )
    sha256: str = Field(description="SHA-256 of the file's bytes.")
    added_at: str = Field(description="When it was first indexed (UTC, ISO 8601).")
    updated_at: str = Field(description="When it was last indexed (UTC, ISO 8601).")


class DocumentList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 1,
                    "documents": [
                        {
                            "doc_id": "003_40868c46990d1f75.txt",
                            "title": _CITATION_EXAMPLE["title"],
                            "length": 3270,
                            "chunks": 9,
                            "url": "/documents/003_40868c46990d1f75.txt/view",
                            "format": "text",
                            "pages": None,
                            "origin": "folder",
                            "sha256": "40868c46990d1f75" * 4,
                            "added_at": "2025-05-01T09:30:00Z",
                            "updated_at": "2025-05-01T09:30:00Z",
                        }
                    ],
                }
            ]
        }
    )

    count: int
    documents: list[DocumentSummary]


class DocumentDetail(DocumentSummary):
    """A document's full text and metadata."""

    content_hash: str
    # [start, end] pairs as fixed-length lists: a tuple's prefixItems trips OpenAPI tools.
    excluded: list[Annotated[list[int], Field(min_length=2, max_length=2)]] = Field(
        description="Spans of text left out of the index (web page furniture): [start, end]."
    )
    text: str


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_question"])
    message: str = Field(examples=["the question is empty: type a question in plain words"])


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class Status(BaseModel):
    status: Literal["ok", "ready"]


class TextUpload(BaseModel):
    """A document sent as JSON text instead of a file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    doc_id: str | None = Field(
        None,
        max_length=1024,
        description="Its id (default: text-<first 12 hex digits of the text's SHA-256>.txt).",
    )
    title: str | None = Field(None, max_length=1000, description="Default: its first line.")
    text: str = Field(description="The document's text, UTF-8.")


class DocumentChange(BaseModel):
    """What a write did to one document."""

    doc_id: str
    title: str
    status: Literal["added", "replaced", "unchanged", "removed"] = Field(
        description="unchanged: the same bytes were already indexed (under this doc_id)."
    )
    chunks: int = Field(description="Passages the document is indexed as.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What reading the file noticed, e.g. PDF pages without text (scans: no OCR).",
    )


class Job(BaseModel):
    """A write that runs in the background (a large upload): poll GET /jobs/{id}."""

    id: str
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(ge=0, le=1, description="The fraction of the work done.")
    error: ErrorDetail | None = Field(description="Why it failed; nothing was written.")
    documents: list[DocumentChange] = Field(description="What it did, once done.")
    created_at: str
    updated_at: str


class WriteResult(BaseModel):
    """The documents written and searchable now, or the job that will write them."""

    documents: list[DocumentChange]
    job: Job | None = Field(description="Set on a 202: the background job to poll.")


class Deleted(BaseModel):
    doc_id: str
    deleted: Literal[True]


ASK_EXAMPLES: dict[str, Any] = {
    "answerable": {
        "summary": "A question the documents answer",
        "value": {"question": "What does the acronym CELAC stand for?"},
    },
    "options": {
        "summary": "Choosing the retrieval mode and the number of passages",
        "value": {"question": "Who is Russia's foreign minister?", "mode": "bm25", "top_k": 3},
    },
    "abstains": {
        "summary": "A question the documents do not answer (abstained: true, answer: null)",
        "value": {"question": "Who won the 1998 football world cup?"},
    },
}

_ERRORS: dict[int, tuple[str, str, str]] = {
    401: (
        "The metrics token is configured and the request does not carry it",
        "unauthorized",
        "this endpoint needs the header Authorization: Bearer <metrics token>",
    ),
    403: (
        "Writes are disabled: the server has no admin token",
        "writes_disabled",
        "writes are disabled on this server: its operator can enable them by setting "
        "VERBATIM_ADMIN_TOKEN (16+ characters) and restarting it",
    ),
    409: (
        "Another document has this id",
        "document_exists",
        "a document with the id 'notes.md' exists: replace it with PUT /documents/notes.md",
    ),
    415: (
        "Unsupported file format or request body type",
        "unsupported_format",
        "'scan.tiff' has \".tiff\"; supported files end in .txt, .md, .html, .htm, .pdf, .docx",
    ),
    408: (
        "The request body did not arrive in time",
        "request_timeout",
        "the request body did not arrive within 10 s",
    ),
    404: (
        "Unknown document, or a span outside it",
        "unknown_document",
        "no document has the id 'nope.txt'",
    ),
    413: (
        "Request body too large",
        "body_too_large",
        "the request body is over the limit of 16384 bytes",
    ),
    422: (
        "Invalid request: empty or too-long question, unknown mode, top_k out of range",
        "invalid_question",
        "the question is 612 characters long; the limit is 500",
    ),
    429: (
        "This client asked too often: retry after the Retry-After header's seconds",
        "rate_limited",
        "too many questions from this address; try again in 3 s",
    ),
    503: (
        "Still loading, or too busy: retry after the Retry-After header's seconds",
        "overloaded",
        "the server is busy; try again in 2 s",
    ),
}


_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 1},
}


# The document writes' own wording of shared statuses.
WRITE_ERRORS: dict[int, tuple[str, str, str]] = {
    401: (
        "No admin token in the Authorization header, a wrong one, or one in the URL",
        "unauthorized",
        "this endpoint needs the header Authorization: Bearer <admin token>",
    ),
    404: ("Unknown document", "unknown_document", "no document has the id 'notes.md'"),
    413: (
        "A file over max_upload_bytes (body_too_large), or more than max_upload_files files "
        "(too_many_files)",
        "too_many_files",
        "the upload holds 11 files; the limit is 10 per request",
    ),
    422: (
        "A file name with a path (invalid_name), or a file that is empty, corrupt, encrypted "
        "or not text",
        "invalid_name",
        "'../../etc/passwd' is not a usable file name: send the file's own name, without a path",
    ),
}


def error_responses(
    *statuses: int, wording: dict[int, tuple[str, str, str]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries, with an example, for the error responses an endpoint can give
    (``wording``: an endpoint's own description, code and message for some statuses)."""
    table = {**_ERRORS, **(wording or {})}
    return {
        status: {
            "model": ErrorBody,
            "description": description,
            "content": {
                "application/json": {"example": {"error": {"code": code, "message": message}}}
            },
            **(
                {"headers": {"Retry-After": {**_RETRY_AFTER, "required": status == 429}}}
                if status in (429, 503)
                else {}
            ),
        }
        for status in statuses
        for description, code, message in [table[status]]
    }
