"""The store side of ``verbatim bench-scale``: each size's store built (or resumed) from its
corpus folder in batches of documents, with where the time goes and the peak RSS, and
``IndexStore.load`` timed in a fresh process."""

from __future__ import annotations

import json
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from embeddings.encoder import Encoder
from eval.scale_corpus import Planned, ScaleCorpus
from rag.config import PROJECT_ROOT, Settings
from rag.docstore import FILENAME
from rag.documents import read_document
from rag.library import Library
from rag.store import IndexParams

BATCH_CHUNKS = 512  # chunks per Library.add (one transaction; bounds what ingest holds)

# Loads the index in a fresh process: import time apart, then load seconds and peak RSS.
_LOAD = """
import json, sys, time
t0 = time.perf_counter()
from rag.docstore import DocumentStore
from rag.store import IndexStore
t1 = time.perf_counter()
store = IndexStore.load(DocumentStore.in_folder(sys.argv[1]), sys.argv[2])
t2 = time.perf_counter()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
rss = int(hwm[0].split()[1]) / 1024 if hwm else None
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "rss_mb": rss,
                  "chunks": len(store.chunks)}))
"""


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: /proc/self/clear_refs); whether that worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS since :func:`reset_peak_rss` (else of the process's life), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class _Clock:
    """Seconds spent in wrapped calls, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


class _TimedEncoder:
    """The encoder, with the time spent embedding and counting tokens clocked."""

    def __init__(self, encoder: Encoder, clock: _Clock):
        self._encoder = encoder
        self.encode = clock.wrap("embed", encoder.encode)
        self.count_tokens = clock.wrap("tokenize", encoder.count_tokens)

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


def _seed_store(index_dir: Path, work: Path, n: int) -> None:
    """Start a new store as a copy of the largest smaller one in ``work`` (SQLite backup)."""
    target = index_dir / FILENAME
    if target.exists():
        return
    smaller = sorted(
        (int(p.parent.name.split("-")[1]), p)
        for p in work.glob(f"store-*/{FILENAME}")
        if p.parent.name.split("-")[1].isdigit() and int(p.parent.name.split("-")[1]) < n
    )
    if not smaller:
        return
    index_dir.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(smaller[-1][1]), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _batches(docs: list[Planned]) -> list[list[Planned]]:
    out: list[list[Planned]] = [[]]
    for d in docs:
        if out[-1] and sum(x.chunks for x in out[-1]) + d.chunks > BATCH_CHUNKS:
            out.append([])
        out[-1].append(d)
    return [b for b in out if b]


def build_store(
    settings: Settings, encoder: Encoder, corpus: ScaleCorpus, work: Path, n: int
) -> dict:
    """Bring the store of this size in step with the planned corpus; what it cost."""
    folder, index_dir = Path(settings.corpus_dir), settings.index_dir  # type: ignore[arg-type]
    _seed_store(index_dir, work, n)
    clock = _Clock()
    library = Library.from_settings(settings, _TimedEncoder(encoder, clock))  # type: ignore[arg-type]
    store = library.store
    store.write = clock.wrap("write", store.write)  # type: ignore[method-assign]
    params = asdict(IndexParams.from_settings(settings))
    if store.records() and store.meta("params") not in (None, params):
        print(f"  store {index_dir} was made with other settings: emptying it", file=sys.stderr)
        store.clear()
    store.set_meta(
        params=params, embedding_dimension=encoder.dimension, corpus_dir=str(folder.resolve())
    )
    stored = store.origins()
    wanted = {d.doc_id: d for d in corpus.docs}
    if extra := sorted(set(stored) - set(wanted)):
        library.remove(extra)
    pending = [d for d in corpus.docs if stored.get(d.doc_id, ("", ""))[1] != d.sha256]
    todo = sum(d.chunks for d in pending)
    rss_before = peak_rss_mb() if reset_peak_rss() else None
    started = time.perf_counter()
    with tqdm(total=todo, unit="chunk", desc=f"ingest {n:,}", disable=not todo) as bar:
        for batch in _batches(pending):
            docs = [read_document(folder / d.doc_id, folder) for d in batch]
            library.add(
                [(doc, doc.doc_id) for doc in docs if doc is not None],
                origin="folder",
                replace=True,
            )
            bar.update(sum(d.chunks for d in batch))
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    return {
        "embedded_chunks": todo,
        "ingest_s": round(seconds, 2) if todo else None,
        "chunks_per_s": round(todo / seconds, 1) if todo else None,
        "ingest_peak_rss_mb": round(peak, 1) if todo else None,
        "rss_before_ingest_mb": round(rss_before, 1) if todo and rss_before else None,
        "ingest_rss_growth_mb": round(peak - rss_before, 1) if todo and rss_before else None,
        "ingest_breakdown_s": {k: round(v, 2) for k, v in clock.seconds.items()},
    }


def cold_load(index_dir: Path, kind: str) -> dict:
    """``IndexStore.load`` in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, str(index_dir), kind],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"loading the index in a fresh process failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
