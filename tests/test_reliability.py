"""Reliability: schemathesis, SIGKILLs in ingest, a bounded load (long form: make reliability)."""

from __future__ import annotations

import json
import os
import random
import shutil
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
from rag.config import PROJECT_ROOT, Settings
from rag.store import IndexStore, build_index

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


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".index."))


def test_sigkill_during_ingest_leaves_a_usable_index_and_no_leftovers(
    tmp_path: Path, encoder: Encoder
) -> None:
    """Defect 3: a kill while the new index was written left a ``.index.tmp-*`` folder for
    good. Each ``verbatim ingest --rebuild`` here is killed once its new index is being written
    (the first at once, the others a random moment later); then the index must load, and the
    next open must leave no temporary folder."""
    corpus = tmp_path / "corpus"  # one seed document: the build is quicker, its write as real
    corpus.mkdir()
    shutil.copy(sorted((PROJECT_ROOT / "seeds").iterdir())[0], corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    chunks = len(build_index(settings, encoder).chunks)
    ingest = [sys.executable, "-m", "rag.cli", "--corpus-dir", str(corpus)]
    ingest += ["--index-dir", str(settings.index_dir)]
    rng = random.Random(16)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    usable = landed = 0
    for kill in range(KILLS):
        proc = subprocess.Popen(
            [*ingest, "ingest", "--rebuild"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and not list(tmp_path.glob(".index.tmp-*")):
            time.sleep(0.0005)
        if kill:
            time.sleep(rng.uniform(0, 0.03))
        landed += proc.poll() is None and bool(list(tmp_path.glob(".index.tmp-*")))
        proc.kill()
        proc.wait()
        store = IndexStore.load(settings.index_dir)  # loading cleans up after the killed build
        usable += len(store.chunks) == chunks == store.vectors.size
        assert leftovers(tmp_path) == [], f"after kill {kill + 1}"
    FIGURES["kills during ingest"] = (
        f"{KILLS} kills ({landed} while the new index was being written), "
        f"{usable} usable, {len(leftovers(tmp_path))} leftovers"
    )
    assert usable == KILLS and landed >= 1


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
