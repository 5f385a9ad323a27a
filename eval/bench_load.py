"""Closed-loop load on a live service's POST /ask: answers/s, latency, statuses, server RSS."""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from eval.metrics import percentile

# Beyond this many threads on one machine the benchmark measures itself, not the server.
MAX_CLIENTS = 256
MAX_SECONDS = 600.0
STATUSES = ("200", "429", "503", "other", "conn_err")
# A refused connection fails at once: pause so a dead server is not spun on.
ERROR_PAUSE_S = 0.05
MIB = 1024 * 1024


def client_counts(value: str) -> list[int]:
    """An argparse type: ``1,8,32`` as whole numbers of clients within 1..MAX_CLIENTS."""
    try:
        counts = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("must be whole numbers joined by commas") from None
    if not all(1 <= n <= MAX_CLIENTS for n in counts):
        raise argparse.ArgumentTypeError(f"each must be between 1 and {MAX_CLIENTS}")
    return counts


def duration(value: str) -> float:
    """An argparse type: seconds, more than 0 and at most MAX_SECONDS."""
    seconds = float(value)
    if not 0 < seconds <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_SECONDS:g}")
    return seconds


def warmup_duration(value: str) -> float:
    """An argparse type: seconds, from 0 to MAX_SECONDS."""
    return duration(value) if float(value) != 0 else 0.0


# -- the server's memory ---------------------------------------------------------------------
def rss_from_metrics(url: str, timeout: float) -> int | None:
    """``process_resident_memory_bytes`` from the service's ``/metrics``, if it exposes it."""
    try:
        response = httpx.get(f"{url}/metrics", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    for line in response.text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return int(float(line.split()[1]))
    return None


def proc_memory(pid: int) -> tuple[int | None, int | None]:
    """Bytes of resident memory now (VmRSS) and at its peak (VmHWM) of a local process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None, None
    kib = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.MULTILINE))
    rss, peak = kib.get("VmRSS"), kib.get("VmHWM")
    return (int(rss) * 1024 if rss else None), (int(peak) * 1024 if peak else None)


def server_memory(url: str, pid: int | None, timeout: float) -> tuple[int | None, int | None]:
    """The server's RSS (``/metrics``, else ``/proc/PID``) and its peak (``/proc/PID`` only)."""
    rss, peak = proc_memory(pid) if pid else (None, None)
    from_metrics = rss_from_metrics(url, timeout)
    return (from_metrics if from_metrics is not None else rss), peak


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MIB:.0f}"


# -- one client count ------------------------------------------------------------------------
@dataclass
class LoadRun:
    """What one client count measured within its window."""

    clients: int
    seconds: float
    statuses: Counter[str]
    latencies_ms: list[float]  # of the 200s
    rss: int | None = None
    peak: int | None = None

    @property
    def answers_per_s(self) -> float:
        return self.statuses["200"] / self.seconds

    def latency(self, q: float) -> str:
        value = percentile(self.latencies_ms, q)
        return "n/a" if value is None else f"{value:.0f}"


Sample = tuple[float, str, float]  # (finished at, status, seconds)


def status_of(code: int) -> str:
    return str(code) if str(code) in STATUSES else "other"


def client_loop(
    url: str, next_question: Callable[[], str], stop: float, timeout: float
) -> list[Sample]:
    """One closed-loop client: the next question as soon as the last answer came, until ``stop``."""
    samples: list[Sample] = []
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        while time.perf_counter() < stop:
            question = next_question()
            started = time.perf_counter()
            try:
                status = status_of(
                    client.post(f"{url}/ask", json={"question": question}).status_code
                )
            except httpx.TransportError:  # refused, reset or timed out
                status = "conn_err"
            finished = time.perf_counter()
            samples.append((finished, status, finished - started))
            if status == "conn_err":
                time.sleep(ERROR_PAUSE_S)
    return samples


def run_clients(
    url: str, questions: list[str], clients: int, seconds: float, warmup_s: float, timeout: float
) -> LoadRun:
    """``clients`` closed-loop clients for ``warmup_s`` + ``seconds``; counts what finished in the
    last ``seconds`` (requests still in flight at the end are awaited and left out)."""
    counter = itertools.count()  # next() on it is atomic under the GIL: one shared cycle

    def next_question() -> str:
        return questions[next(counter) % len(questions)]

    start = time.perf_counter() + warmup_s
    stop = start + seconds
    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(client_loop, url, next_question, stop, timeout) for _ in range(clients)
        ]
        samples = [s for f in futures for s in f.result() if start <= s[0] <= stop]
    statuses = Counter(status for _, status, _ in samples)
    latencies = [elapsed * 1000 for _, status, elapsed in samples if status == "200"]
    return LoadRun(clients, seconds, statuses, latencies)


# -- the report ------------------------------------------------------------------------------
COLUMNS = ("clients", "answers/s", "p50 ms", "p95 ms", "p99 ms", *STATUSES, "RSS MiB", "peak MiB")


def table_row(run: LoadRun) -> str:
    cells = [
        str(run.clients),
        f"{run.answers_per_s:.1f}",
        run.latency(50),
        run.latency(95),
        run.latency(99),
        *(str(run.statuses[s]) for s in STATUSES),
        mib(run.rss),
        mib(run.peak),
    ]
    return "".join(f"{c:>10}" for c in cells)


def statuses_text(statuses: Counter[str]) -> str:
    """``all 200`` or ``86 × 200, 13,365 × 503`` (the README's wording)."""
    given = [(s, statuses[s]) for s in STATUSES if statuses[s]]
    if [s for s, _ in given] == ["200"]:
        return "all 200"
    return ", ".join(f"{n:,} × {s}" for s, n in given) or "none"


def markdown_rows(runs: list[LoadRun]) -> list[str]:
    rows = [
        "| clients | answers/s | p50 ms | p95 ms | p99 ms | statuses | server RSS MiB |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        cells = [r.clients, f"{r.answers_per_s:.1f}", r.latency(50), r.latency(95)]
        cells += [r.latency(99), statuses_text(r.statuses), mib(r.rss)]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return rows


def run_load(
    url: str, questions: list[str], args: argparse.Namespace, runs: list[LoadRun] | None = None
) -> int:
    """Each of ``args.clients`` in turn (each count's :class:`LoadRun` appended to ``runs``);
    exit 0 when every response was 200 or back-pressure (429/503) and every client count got
    answers, else 1."""
    url = url.rstrip("/")
    try:  # reachable, and warm
        with httpx.Client(timeout=args.timeout, trust_env=False) as client:
            for question in questions[: max(1, args.warmup)]:
                client.post(f"{url}/ask", json={"question": question})
    except httpx.TransportError as exc:
        print(f"verbatim bench: cannot reach the service at {url}: {exc}", file=sys.stderr)
        return 1
    rss, peak = server_memory(url, args.server_pid, args.timeout)
    print(
        f"closed-loop POST /ask against {url}: {len(questions)} questions cycled, "
        f"{args.warmup_seconds:g} s warm-up then {args.seconds:g} s per client count"
    )
    print(f"server RSS before: {mib(rss)} MiB (peak {mib(peak)} MiB)")
    print("".join(f"{c:>10}" for c in COLUMNS), flush=True)
    runs = [] if runs is None else runs
    for clients in args.clients:
        run = run_clients(url, questions, clients, args.seconds, args.warmup_seconds, args.timeout)
        run.rss, run.peak = server_memory(url, args.server_pid, args.timeout)
        runs.append(run)
        print(table_row(run), flush=True)
    print()
    print("\n".join(markdown_rows(runs)))
    failed = any(
        r.statuses["other"] or r.statuses["conn_err"] or not r.statuses["200"] for r in runs
    )
    return 1 if failed else 0
