"""POST /ask latency against a live server: ``python -m api.bench --url http://127.0.0.1:8000``."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from rag.config import PROJECT_ROOT

DEV_QUESTIONS = PROJECT_ROOT / "eval" / "questions" / "dev.jsonl"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def load_questions(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def timed_ask(client: httpx.Client, url: str, question: str) -> tuple[float, dict | None]:
    """Seconds for one POST /ask, and the answer (None on an HTTP error)."""
    started = time.perf_counter()
    response = client.post(f"{url}/ask", json={"question": question})
    elapsed = time.perf_counter() - started
    return elapsed, response.json() if response.status_code == 200 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.bench", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("--questions", type=Path, default=DEV_QUESTIONS, help="JSONL questions")
    parser.add_argument("--concurrency", type=int, default=1, help="requests at a time")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    questions = load_questions(args.questions)
    with httpx.Client(timeout=120) as client:
        for question in questions[: args.warmup]:
            timed_ask(client, url, question)
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            results = list(pool.map(lambda q: timed_ask(client, url, q), questions))
    ms = [seconds * 1000 for seconds, _ in results]
    answers = [a for _, a in results if a is not None]
    server = [a["timings_ms"]["total"] for a in answers]
    print(f"POST /ask x {len(ms)} (concurrency {args.concurrency}) against {url}")
    print(
        f"  client latency ms: median {statistics.median(ms):.1f}  p95 {percentile(ms, 95):.1f}"
        f"  min {min(ms):.1f}  max {max(ms):.1f}"
    )
    if server:
        print(
            f"  server total ms:   median {statistics.median(server):.1f}"
            f"  p95 {percentile(server, 95):.1f}"
        )
    abstained = sum(a["abstained"] for a in answers)
    print(
        f"  {len(answers)} answered with 200 ({abstained} abstentions), "
        f"{len(ms) - len(answers)} errors"
    )
    return 0 if len(answers) == len(ms) else 1


if __name__ == "__main__":
    sys.exit(main())
