"""The document store: documents, their chunks, terms and vectors, and write jobs, in one SQLite
file (WAL). Every change is one transaction that also bumps a generation, so a crash leaves
each document wholly in or wholly out, and every process serving the store can catch up."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.documents import Document

SCHEMA_VERSION = 2
FILENAME = "verbatim.sqlite3"
Origin = str  # "folder" (kept in step with a corpus folder) or "upload"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, format TEXT NOT NULL,
    sha256 TEXT NOT NULL, origin TEXT NOT NULL, text TEXT NOT NULL, excluded TEXT NOT NULL,
    pages TEXT NOT NULL, added_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL, terms TEXT NOT NULL, vector BLOB NOT NULL);
DROP INDEX IF EXISTS chunks_doc;
CREATE INDEX IF NOT EXISTS chunks_place ON chunks(doc_id, start, "end");
CREATE TABLE IF NOT EXISTS changes (
    generation INTEGER NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (generation, doc_id));
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, progress REAL NOT NULL, error TEXT,
    result TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


_JOB = "SELECT id, state, progress, error, result, created_at, updated_at FROM jobs"


class StoreError(RuntimeError):
    """The store file cannot be used; the message says why and what to do."""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class DocumentRecord:
    """A document's metadata, without its text."""

    doc_id: str
    title: str
    source: str
    format: str
    sha256: str
    origin: Origin
    length: int
    pages: int | None
    chunks: int
    added_at: str
    updated_at: str


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored: ``document.text[start:end]`` is its text."""

    id: int
    doc_id: str
    start: int
    end: int
    terms: list[str]
    vector: np.ndarray


@dataclass(frozen=True)
class NewChunk:
    start: int
    end: int
    terms: list[str]
    vector: np.ndarray


@dataclass(frozen=True)
class Put:
    """One document to write, replacing any document of the same id."""

    document: Document
    origin: Origin
    source: str
    chunks: Sequence[NewChunk]


class DocumentStore:
    """The SQLite file in an index folder. Cheap to construct; one connection per thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._ready = False

    @classmethod
    def in_folder(cls, index_dir: Path) -> DocumentStore:
        return cls(Path(index_dir) / FILENAME)

    # -- connection ------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a killed process loses nothing committed; power loss
                # may lose the last commits but never corrupts.
                conn.execute("PRAGMA synchronous=NORMAL")
                if not self._ready:
                    conn.executescript(_SCHEMA)
                    self._check_version(conn)
                    self._ready = True
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"the document store {self.path} cannot be read ({exc}); move it away and "
                    "run `verbatim ingest --rebuild`"
                ) from exc
            self._local.conn = conn
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('generation', '0')",
                (str(SCHEMA_VERSION),),
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"the document store {self.path} has schema {row[0]}, not {SCHEMA_VERSION}; "
                "run `verbatim ingest --rebuild`"
            )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state (a WAL read transaction)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    # -- reading ---------------------------------------------------------------------------
    def generation(self) -> int:
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def meta(self, key: str) -> object:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, **values: object) -> None:
        with self._transaction() as conn:
            rows = [(k, json.dumps(v)) for k, v in values.items()]
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def records(self, doc_ids: Sequence[str] | None = None) -> list[DocumentRecord]:
        """Metadata of every document (or of these), in doc_id order."""
        sql = (
            "SELECT d.doc_id, title, source, format, sha256, origin, length(text), pages, "
            "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.doc_id), added_at, updated_at "
            "FROM documents d"
        )
        if doc_ids is None:
            rows = self._conn().execute(sql + " ORDER BY d.doc_id").fetchall()
        else:
            rows = [
                r
                for i in doc_ids
                for r in self._conn().execute(sql + " WHERE d.doc_id = ?", (i,)).fetchall()
            ]
        return [
            DocumentRecord(*r[:7], len(json.loads(r[7])) or None, *r[8:])  # type: ignore[misc]
            for r in rows
        ]

    def sha256s(self) -> dict[str, str]:
        """sha256 -> doc_id of every document (the first by id when two share one)."""
        rows = self._conn().execute("SELECT sha256, doc_id FROM documents ORDER BY doc_id DESC")
        return dict(rows.fetchall())

    def origins(self) -> dict[str, tuple[Origin, str]]:
        """doc_id -> (origin, sha256)."""
        rows = self._conn().execute("SELECT doc_id, origin, sha256 FROM documents")
        return {d: (o, s) for d, o, s in rows.fetchall()}

    def documents(self, doc_ids: Sequence[str] | None = None) -> Iterator[Document]:
        sql = "SELECT doc_id, title, text, sha256, excluded, format, pages FROM documents"
        conn = self._conn()
        rows = (
            conn.execute(sql + " ORDER BY doc_id")
            if doc_ids is None
            else (r for i in doc_ids for r in conn.execute(sql + " WHERE doc_id = ?", (i,)))
        )
        for doc_id, title, text, sha, excluded, fmt, pages in rows:
            yield Document(
                doc_id=doc_id,
                title=title,
                text=text,
                content_hash=sha,
                excluded=tuple(tuple(s) for s in json.loads(excluded)),
                format=fmt,
                pages=tuple(json.loads(pages)),
            )

    def chunks(self, doc_ids: Sequence[str] | None = None) -> Iterator[StoredChunk]:
        """Every chunk (or those of these documents), in id order."""
        sql = 'SELECT id, doc_id, start, "end", terms, vector FROM chunks'
        conn = self._conn()
        rows = (
            conn.execute(sql + " ORDER BY id")
            if doc_ids is None
            else (
                r
                for i in doc_ids
                for r in conn.execute(sql + " WHERE doc_id = ? ORDER BY id", (i,))
            )
        )
        for id_, doc_id, start, end, terms, vector in rows:
            yield StoredChunk(
                id_, doc_id, start, end, terms.split(), np.frombuffer(vector, dtype=np.float32)
            )

    def count_chunks(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def chunk_rows(self) -> Iterator[tuple[int, str, int, int]]:
        """(id, doc_id, start, end) of every chunk, read from ``chunks_place`` alone (not from
        the rows, which also hold terms and a vector each); in no set order."""
        yield from self._conn().execute(
            'SELECT id, doc_id, start, "end" FROM chunks INDEXED BY chunks_place'
        )

    def _column(self, column: str, ids: np.ndarray | None) -> Iterator[tuple[int, object]]:
        """(id, column) of every chunk in id order, or of these ids."""
        sql = f"SELECT id, {column} FROM chunks"
        if ids is None:
            yield from self._conn().execute(sql + " ORDER BY id")
            return
        for i in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
            part = [int(x) for x in ids[i : i + 500]]
            marks = ",".join("?" * len(part))
            yield from self._conn().execute(f"{sql} WHERE id IN ({marks}) ORDER BY id", part)

    def terms(self, ids: np.ndarray | None = None) -> Iterator[tuple[int, list[str]]]:
        """(id, BM25 terms) of every chunk (or of these)."""
        for id_, terms in self._column("terms", ids):
            yield id_, str(terms).split()

    def vectors(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) of every chunk's vector (or of these ids), read as one buffer."""
        rows = list(self._column("vector", ids))
        found = np.array([r[0] for r in rows], dtype=np.int64)
        dim = len(rows[0][1]) // 4 if rows else int(self.meta("embedding_dimension") or 384)  # type: ignore[arg-type]
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)  # type: ignore[misc]
        return found, matrix

    def changed_since(self, generation: int) -> set[str]:
        """The documents added, replaced or removed after ``generation``."""
        rows = self._conn().execute(
            "SELECT DISTINCT doc_id FROM changes WHERE generation > ?", (generation,)
        )
        return {r[0] for r in rows.fetchall()}

    # -- writing ---------------------------------------------------------------------------
    def write(self, puts: Sequence[Put] = (), deletes: Sequence[str] = ()) -> int:
        """Replace, add and delete documents in one transaction; the new generation."""
        stamp = now()
        with self._transaction() as conn:
            generation = self.generation() + 1
            touched = set(deletes) | {p.document.doc_id for p in puts}
            added = dict(
                conn.execute(
                    f"SELECT doc_id, added_at FROM documents WHERE doc_id IN "
                    f"({','.join('?' * len(touched))})",
                    sorted(touched),
                ).fetchall()
            )
            for doc_id in touched:
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                conn.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
            for p in puts:
                d = p.document
                conn.execute(
                    "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        d.doc_id, d.title, p.source, d.format, d.content_hash, p.origin, d.text,
                        json.dumps(d.excluded), json.dumps(d.pages), added.get(d.doc_id, stamp),
                        stamp,
                    ),
                )  # fmt: skip
                conn.executemany(
                    'INSERT INTO chunks (doc_id, start, "end", terms, vector) '
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            d.doc_id, c.start, c.end, " ".join(c.terms),
                            np.ascontiguousarray(c.vector, dtype=np.float32).tobytes(),
                        )
                        for c in p.chunks
                    ],
                )  # fmt: skip
            conn.executemany(
                "INSERT INTO changes VALUES (?, ?)", [(generation, i) for i in sorted(touched)]
            )
            conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
        return generation

    def clear(self) -> int:
        """Delete every document (``ingest --rebuild``)."""
        return self.write(deletes=[r.doc_id for r in self.records()])

    # -- jobs ------------------------------------------------------------------------------
    def create_job(self) -> str:
        job_id = uuid.uuid4().hex
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO jobs VALUES (?, 'queued', 0, NULL, '[]', ?, ?)",
                (job_id, now(), now()),
            )
        return job_id

    def update_job(
        self,
        job_id: str,
        state: str | None = None,
        progress: float | None = None,
        error: dict | None = None,
        result: list | None = None,
    ) -> None:
        fields = {"state": state, "progress": progress, "updated_at": now()}
        if error is not None:
            fields["error"] = json.dumps(error)
        if result is not None:
            fields["result"] = json.dumps(result)
        given = {k: v for k, v in fields.items() if v is not None}
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in given)} WHERE id = ?",
                (*given.values(), job_id),
            )

    def fail_unfinished_jobs(self) -> int:
        """Mark jobs that a stopped process left queued or running as failed (at start-up)."""
        message = "the service stopped during the job; its files went in whole or not at all"
        error = json.dumps({"code": "interrupted", "message": message + ": check GET /documents"})
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? "
                "WHERE state IN ('queued', 'running')",
                (error, now()),
            )
        return cur.rowcount

    def job(self, job_id: str) -> dict | None:
        row = self._conn().execute(_JOB + " WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "state", "progress", "error", "documents", "created_at", "updated_at")
        job = dict(zip(keys, row, strict=True))
        job["error"] = json.loads(job["error"]) if job["error"] else None
        job["documents"] = json.loads(job["documents"])
        return job
