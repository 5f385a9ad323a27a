"""Reading an upload's body (multipart files, or JSON text) into validated documents, all of
them or none: nothing is written until every file has become a document."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from api.errors import ApiError, validation_message
from api.schemas import TextUpload
from rag.config import Settings
from rag.documents import Document, document_from_bytes
from rag.formats import SUPPORTED_SUFFIXES, DocumentFormatError
from rag.library import check_doc_id

FILE_FIELDS = ("files", "file")
TITLE_FIELD = "title"
MAX_FIELD_BYTES = 4096  # a title, not a file
NOT_AN_UPLOAD = (
    "send the files as multipart/form-data parts named files, or a JSON object "
    '{"text": "...", "title": "...", "doc_id": "..."} as application/json'
)


@dataclass
class Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class Upload:
    """Validated documents with their source names, and the bytes of their files."""

    documents: list[tuple[Document, str]]
    size: int
    warnings: dict[str, list[str]] = field(default_factory=dict)  # doc_id -> what to know


def check_file_name(name: str) -> str:
    """``name`` if it is a bare file name: no path, no control characters, not "." or ".."."""
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or name != name.strip()
        or len(name) > 255
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
    )
    if bad:
        raise ApiError(
            422,
            "invalid_name",
            f"{name[:100]!r} is not a usable file name: send the file's own name, without a "
            "path or control characters",
        )
    return name


def _document(
    doc_id: str, name: str, data: bytes, title: str | None, warnings: dict[str, list[str]]
) -> Document:
    try:
        return document_from_bytes(doc_id, name, data, title, warnings.setdefault(doc_id, []))
    except DocumentFormatError as exc:
        status = 415 if exc.code == "unsupported_format" else 422
        raise ApiError(status, exc.code, exc.message) from None


class _Parts:
    """python-multipart's callbacks, gathering parts and stopping at the first limit crossed."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.parts: list[Part] = []
        self.files = 0
        self.ended = False
        self._field = self._value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.data,
            "on_end": lambda: setattr(self, "ended", True),
        }

    def begin(self) -> None:
        self.parts.append(Part())
        self._headers = {}

    def header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def headers_finished(self) -> None:
        part = self.parts[-1]
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if part.name in FILE_FIELDS:
            self.files += 1
            if self.files > self.settings.max_upload_files:
                raise ApiError(
                    413,
                    "too_many_files",
                    f"the upload holds more than {self.settings.max_upload_files} files, the "
                    "limit per request: send them in several requests",
                )
            try:
                part.filename = (filename or b"").decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(
                    422, "invalid_name", "a file name is not valid UTF-8: rename the file"
                ) from None
        elif part.name != TITLE_FIELD:
            raise ApiError(
                422,
                "invalid_request",
                f"unexpected part {part.name[:100]!r}: {NOT_AN_UPLOAD} (and optionally title)",
            )

    def data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.data += data[start:end]
        limit = self.settings.max_upload_bytes if part.filename is not None else MAX_FIELD_BYTES
        if len(part.data) > limit:
            what = repr(part.filename) if part.filename is not None else f"the {part.name} field"
            raise ApiError(
                413,
                "body_too_large",
                f"{what} is over the limit of {limit} bytes per file",
            )


def _multipart(body: bytes, boundary: bytes, settings: Settings) -> list[Part]:
    parts = _Parts(settings)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # python-multipart's parse errors
        raise ApiError(422, "invalid_request", f"the multipart body is malformed ({exc})") from exc
    if not parts.ended:
        raise ApiError(422, "invalid_request", "the multipart body is incomplete")
    return parts.parts


def _from_multipart(body: bytes, boundary: bytes, settings: Settings, doc_id: str | None) -> Upload:
    parts = _multipart(body, boundary, settings)
    files = [p for p in parts if p.filename is not None]
    titles = [p.data.decode("utf-8", "replace").strip() for p in parts if p.filename is None]
    if not files:
        raise ApiError(422, "invalid_request", f"the upload holds no file: {NOT_AN_UPLOAD}")
    if (doc_id is not None or titles) and len(files) > 1:
        what = "a replacement" if doc_id is not None else "an upload with a title"
        raise ApiError(422, "invalid_request", f"{what} holds one file, not {len(files)}")
    names = [check_file_name(p.filename or "") for p in files]
    if len(set(names)) < len(names):
        raise ApiError(422, "invalid_name", "two files have the same name: rename one")
    title = (titles[0] if titles else None) or None
    warnings: dict[str, list[str]] = {}
    documents = [
        (_document(doc_id or name, name, bytes(p.data), title, warnings), name)
        for name, p in zip(names, files, strict=True)
    ]
    return Upload(documents, sum(len(p.data) for p in files), warnings)


def _from_json(body: bytes, settings: Settings, doc_id: str | None) -> Upload:
    try:
        upload = TextUpload.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if any(not e["loc"] for e in errors) and errors[0]["type"] != "json_invalid":
            message = 'the body must be a JSON object such as {"text": "...", "title": "..."}'
        else:
            located = [{**e, "loc": ("body", *e["loc"])} for e in errors]
            message = validation_message(RequestValidationError(located))
        raise ApiError(422, "invalid_request", message) from None
    data = upload.text.encode("utf-8", "surrogatepass")
    if len(data) > settings.max_upload_bytes:
        raise ApiError(
            413,
            "body_too_large",
            f"the text is over the limit of {settings.max_upload_bytes} bytes per document",
        )
    doc_id = doc_id or upload.doc_id or f"text-{hashlib.sha256(data).hexdigest()[:12]}.txt"
    try:
        check_doc_id(doc_id)
    except ValueError as exc:
        raise ApiError(422, "invalid_name", str(exc)) from None
    if doc_id.endswith("/view"):  # GET /documents/{id}/view would be the page, never the text
        raise ApiError(422, "invalid_name", f"{doc_id[:100]!r} ends in /view: choose another id")
    # The format is text whatever the id's suffix: the bytes are the text itself.
    return Upload([(_document(doc_id, "text.txt", data, upload.title, {}), doc_id)], len(data))


def read_upload(
    body: bytes, content_type: str | None, settings: Settings, doc_id: str | None = None
) -> Upload:
    """The documents an upload's body holds (``doc_id``: the one a PUT replaces), validated,
    or an :class:`ApiError` saying what to fix. CPU-bound: call it off the event loop."""
    media, options = parse_options_header(content_type or "")
    if media == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise ApiError(422, "invalid_request", "the multipart body has no boundary")
        return _from_multipart(body, boundary, settings, doc_id)
    if media == b"application/json":
        return _from_json(body, settings, doc_id)
    raise ApiError(
        415,
        "unsupported_media_type",
        f"{NOT_AN_UPLOAD}; files end in {', '.join(SUPPORTED_SUFFIXES)}",
    )
