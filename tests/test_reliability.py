"""Reliability: schemathesis, SIGKILLs during writes, a bounded load (long form: make reliability)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from api_fixtures import HARDENED
from reliability_figures import FIGURES

from embeddings.encoder import Encoder
from rag.chunking import Chunker
from rag.config import PROJECT_ROOT, Settings
from rag.docstore import DocumentStore
from rag.store import IndexStore

# make reliability sets it; make test runs the short form.
LONG = os.environ.get("VERBATIM_RELIABILITY") == "long"
SCHEMATHESIS_EXAMPLES = 100 if LONG else 3
KILLS = 20 if LONG else 2
LOAD_CLIENTS, LOAD_SECONDS = 16, (60 if LONG else 3)
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")
TOKEN = HARDENED["VERBATIM_METRICS_TOKEN"]

pytestmark = pytest.mark.reliability


def test_schemathesis_finds_no_failure(hardened_server: str, tmp_path: Path) -> None:
    """Every schemathesis check over the live OpenAPI (the short form: its coverage phase)."""
    report, har = tmp_path / "report.json", tmp_path / "requests.har"
    cmd = [
        *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
        *("--config-file", str(SCHEMATHESIS_CONFIG)),
        *("run", f"{hardened_server}/openapi.json", "--checks", "all"),
        *("--max-examples", str(SCHEMATHESIS_EXAMPLES), "--seed", "16"),
        *("-H", f"Authorization: Bearer {TOKEN}", "--report", "json,har"),
        *("--report-json-path", str(report), "--report-har-path", str(har)),
        *(() if LONG else ("--phases", "coverage")),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = Counter(e["response"]["status"] for e in entries)
    summary = json.loads(report.read_text())
    failures = sum(f["count"] for f in summary["failures"])
    FIGURES["schemathesis"] = (
        f"{len(entries)} requests, {failures} failures, {len(summary['errors'])} errors, "
        f"{sum(n for s, n in statuses.items() if s >= 500)} server errors; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert done.returncode == 0, done.stdout[-6000:]
    assert failures == 0 and not summary["errors"]
    assert all(status < 500 for status in statuses)
    assert len(entries) >= (1000 if LONG else 100)


# A writer that adds, replaces and deletes documents for ever (killed by the test below).
WRITER = """
import sys, itertools
from pathlib import Path
from embeddings.encoder import Encoder
from rag.config import Settings
from rag.documents import Document, content_hash
from rag.library import Library
settings = Settings(index_dir=Path(sys.argv[1]), chunk_tokens=24, chunk_overlap_tokens=6)
encoder = Encoder.from_settings(settings)
encoder.warm_up()
library = Library.from_settings(settings, encoder)
text = Path(sys.argv[2]).read_text()
print("ready", flush=True)
for n in itertools.count():
    doc_id = f"doc-{n % 3}.txt"
    version = text[: 400 + 40 * (n % 7)]
    doc = Document(doc_id, doc_id, version, content_hash(version.encode()))
    if doc_id in library.store.origins():
        (library.remove([doc_id]) if n % 2 else library.replace(doc, doc_id))
    else:
        library.add([(doc, doc_id)])
    print(library.store.generation(), flush=True)
"""


def test_sigkill_during_writes_leaves_each_document_wholly_in_or_out(
    tmp_path: Path, encoder: Encoder
) -> None:
    """Writers adding, replacing and deleting documents are killed at random moments; after
    each kill the store passes SQLite's integrity check, the index loads, and every document
    in it has exactly the chunks (and vectors) its text chunks into: none half-written."""
    settings = Settings(index_dir=tmp_path / "index", chunk_tokens=24, chunk_overlap_tokens=6)
    source = tmp_path / "source.txt"
    source.write_text(sorted((PROJECT_ROOT / "seeds").iterdir())[0].read_text())
    chunker = Chunker(encoder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
    rng = random.Random(16)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    whole = generations = 0
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(settings.index_dir), str(source)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # Kill only once this writer has committed, so a slow machine still kills mid-writes.
        while (line := proc.stdout.readline()) and int(line) <= generations:
            pass
        assert line, "the writer stopped before it committed"
        time.sleep(rng.uniform(0.0, 1.0))
        assert proc.poll() is None, "the writer stopped by itself"
        proc.kill()
        proc.wait()
        docstore = DocumentStore.in_folder(settings.index_dir)
        with sqlite3.connect(docstore.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store = IndexStore.load(docstore)
        assert store.vectors.size == store.sparse.size == len(store.chunks)
        counts = store.chunk_counts()
        whole += all(counts[d.doc_id] == len(chunker.chunk(d)) for d in store.documents.values())
        generations = docstore.generation()
        docstore.close()
    FIGURES["kills during writes"] = (
        f"{KILLS} kills during add/replace/delete ({generations} commits in all), "
        f"{whole} times every document wholly in or out"
    )
    assert whole == KILLS and generations >= KILLS


def test_bounded_load_answers_only_200_503_429(
    hardened_server: str, dev_questions: list[dict]
) -> None:
    """16 clients asking at once (half of them wait as Retry-After says, half do not): every
    reply is an answer, a busy 503 or a rate-limit 429 with Retry-After; no error, no reset."""
    questions = [q["question"] for q in dev_questions]
    statuses: Counter[int | str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    began = time.monotonic()
    stop = began + LOAD_SECONDS

    def client(seed: int) -> None:
        rng = random.Random(seed)
        # Like browsers, never reuse a connection the server may be closing for idleness.
        limits = httpx.Limits(keepalive_expiry=0.5)
        with httpx.Client(base_url=hardened_server, timeout=60, limits=limits) as c:
            while time.monotonic() < stop:
                started = time.monotonic()
                wait = 0
                try:
                    r = c.post("/ask", json={"question": rng.choice(questions)})
                    status: int | str = r.status_code
                    if status in (429, 503):
                        if not r.headers.get("retry-after", "").isdigit():
                            status = f"{status} without Retry-After"
                        elif seed % 2:
                            wait = int(r.headers["retry-after"])
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(time.monotonic() - started)
                time.sleep(min(wait, max(0.0, stop - time.monotonic())))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(LOAD_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    FIGURES["load"] = (
        f"{LOAD_CLIENTS} clients for {LOAD_SECONDS} s (all answered after {elapsed:.0f} s): "
        f"{sum(statuses.values())} requests, statuses {dict(statuses)}, "
        f"{len(latencies) / elapsed:.1f} answers/s, p50 of answers {p50:.0f} ms"
    )
    assert set(statuses) <= {200, 503, 429}, statuses
    assert statuses[200] > 0
    metrics = httpx.get(f"{hardened_server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 'status="500"' not in metrics.text
