"""``verbatim add``, ``remove`` and ``documents``: on the index folder directly (a running
service picks the change up before its next answers), or through a service's API (``--url``)."""

from __future__ import annotations

import argparse
import functools
import json
import mimetypes
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote

from rag.config import Settings

EXIT_FAILURE, EXIT_USAGE = 1, 2
# The keys `documents --json` prints, the same whether read from the store or from the API.
KEYS = ("doc_id", "title", "format", "pages", "chunks", "length", "origin", "sha256")
KEYS += ("added_at", "updated_at")
JOB_POLL_S = 0.5


class Failure(Exception):
    """A command failed for a reason the user can act on; the message says which."""


def _failing(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command, its expected failures printed as one line on stderr with status 1."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from rag.docstore import StoreError
        from rag.formats import DocumentFormatError
        from rag.library import DocumentConflict, UnknownDocument

        try:
            return command(args)
        except UnknownDocument as exc:
            print(f"verbatim: no document has the id {exc.args[0]!r}", file=sys.stderr)
        except (Failure, DocumentFormatError, DocumentConflict, StoreError, ValueError) as exc:
            print(f"verbatim: {exc}", file=sys.stderr)
        except OSError as exc:
            print(f"verbatim: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return EXIT_FAILURE

    return run


def _settings(args: argparse.Namespace) -> Settings:
    from rag.cli import settings_from

    return settings_from(args)


# -- over HTTP ------------------------------------------------------------------------------
class Remote:
    """A running service's document API, with the admin token when one is given."""

    def __init__(self, url: str, token: str | None):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=600)
        self.url = url

    def call(self, method: str, path: str, **kw) -> tuple[int, dict]:
        import httpx

        try:
            response = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise Failure(f"cannot reach {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message = error.get("message") or response.reason_phrase
            raise Failure(f"{message} (HTTP {response.status_code} {error.get('code', '')})")
        return response.status_code, body

    def add(self, files: list[Path], title: str | None, replace: bool) -> list[dict]:
        parts = [("files", (f.name, f.read_bytes(), _mime(f))) for f in files]
        data = {"title": title} if title else {}
        if replace:
            return [d for part in parts for d in self._put_or_post(part, data)]
        status, body = self.call("POST", "/documents", files=parts, data=data)
        return self._wait(body) if status == 202 else body["documents"]

    def _put_or_post(self, part: tuple, data: dict) -> list[dict]:
        name = part[1][0]
        try:
            _, body = self.call("PUT", f"/documents/{quote(name)}", files=[part], data=data)
        except Failure as exc:
            if "HTTP 404" not in str(exc):
                raise
            status, body = self.call("POST", "/documents", files=[part], data=data)
            return self._wait(body) if status == 202 else body["documents"]
        return body["documents"]

    def _wait(self, body: dict) -> list[dict]:
        """The documents of a background job, once it is done."""
        job = body["job"]
        while job["state"] in ("queued", "running"):
            time.sleep(JOB_POLL_S)
            _, job = self.call("GET", f"/jobs/{job['id']}")
        if job["state"] == "failed":
            raise Failure(f"indexing failed: {job['error']['message']}")
        return job["documents"]

    def remove(self, doc_ids: list[str]) -> list[dict]:
        for doc_id in doc_ids:
            self.call("DELETE", f"/documents/{quote(doc_id, safe='/')}")
        return [{"doc_id": i, "status": "removed", "chunks": 0} for i in doc_ids]

    def documents(self) -> list[dict]:
        return self.call("GET", "/documents")[1]["documents"]


def _mime(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _remote(args: argparse.Namespace) -> Remote | None:
    if args.url is None:
        return None
    token = args.token
    if token is None and (configured := _settings(args).admin_token) is not None:
        token = configured.get_secret_value()
    return Remote(args.url, token)


# -- the commands ---------------------------------------------------------------------------
def _print_changes(changes: list[dict]) -> None:
    for c in changes:
        chunks = f" ({c['chunks']} chunks)" if c["status"] != "removed" else ""
        print(f"{c['status']:<9} {c['doc_id']}{chunks}")


@_failing
def cmd_add(args: argparse.Namespace) -> int:
    """Index files (each one's name is its doc_id); all of them or, on any error, none."""
    if args.title is not None and len(args.files) > 1:
        print("verbatim add: --title names one file's document; give one FILE", file=sys.stderr)
        return EXIT_USAGE
    if (remote := _remote(args)) is not None:
        _print_changes(remote.add(args.files, args.title, args.replace))
        return 0
    from embeddings.encoder import Encoder
    from rag.documents import document_from_bytes
    from rag.library import Library

    settings = _settings(args)
    documents = [  # every file read and checked before the model loads or anything is written
        (document_from_bytes(f.name, f.name, f.read_bytes(), args.title), f.name)
        for f in args.files
    ]
    encoder = Encoder.from_settings(settings)
    encoder.warm_up()
    changes = Library.from_settings(settings, encoder).add(documents, replace=args.replace)
    _print_changes([asdict(c) for c in changes])
    return 0


@_failing
def cmd_remove(args: argparse.Namespace) -> int:
    """Remove documents by id, all of them or none."""
    if (remote := _remote(args)) is not None:
        _print_changes(remote.remove(args.doc_ids))
        return 0
    from embeddings.encoder import Encoder
    from rag.library import Library

    settings = _settings(args)
    _store(settings)  # refuse a folder without an index rather than create one
    library = Library.from_settings(settings, Encoder.from_settings(settings))
    _print_changes([asdict(c) for c in library.remove(args.doc_ids)])
    return 0


def _store(settings: Settings):
    from rag.docstore import DocumentStore

    store = DocumentStore.in_folder(settings.index_dir)
    if not store.path.is_file():
        raise Failure(f"no index at {settings.index_dir}: run `verbatim ingest` first")
    return store


@_failing
def cmd_documents(args: argparse.Namespace) -> int:
    """List the documents: a table, or JSON."""
    if (remote := _remote(args)) is not None:
        rows = [{k: d.get(k) for k in KEYS} for d in remote.documents()]
    else:
        records = _store(_settings(args)).records()
        rows = [{k: asdict(r).get(k) for k in KEYS} for r in records]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max([len("doc_id"), *(len(r["doc_id"]) for r in rows)])
    print(f"{'doc_id':<{width}}  {'title':<40}  {'format':<8}  pages  chunks  updated")
    for r in rows:
        title = r["title"] if len(r["title"]) <= 40 else r["title"][:39] + "…"
        pages = "" if r["pages"] is None else r["pages"]
        print(
            f"{r['doc_id']:<{width}}  {title:<40}  {r['format']:<8}  {pages:>5}  "
            f"{r['chunks']:>6}  {r['updated_at']}"
        )
    return 0


def _add_remote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="a running service's base URL: go through its API instead")
    p.add_argument("--token", help="with --url: the admin token (default: VERBATIM_ADMIN_TOKEN)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``add``, ``remove`` and ``documents`` to the ``verbatim`` command line."""
    p = subparsers.add_parser("add", help="add files to the index (their names are their ids)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--replace", action="store_true", help="replace documents of the same name")
    p.add_argument("--title", help="the document's title (one FILE only)")
    _add_remote_options(p)
    p.set_defaults(func=cmd_add)

    p = subparsers.add_parser("remove", help="remove documents from the index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    _add_remote_options(p)
    p.set_defaults(func=cmd_remove)

    p = subparsers.add_parser("documents", help="list the indexed documents")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_remote_options(p)
    p.set_defaults(func=cmd_documents)
