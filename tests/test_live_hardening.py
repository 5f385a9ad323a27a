"""Issue 16 over sockets against ``verbatim serve``: raw HTTP, slow and vanishing clients, caps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import pytest
from api_fixtures import HARDENED, free_port
from prometheus_client.parser import text_string_to_metric_families

from rag.config import PROJECT_ROOT

pytestmark = pytest.mark.reliability  # part of make reliability too
AUTH = {"Authorization": f"Bearer {HARDENED['VERBATIM_METRICS_TOKEN']}"}
WAIT_S = 30  # generous: how long a test waits for the server to act, never a measured bound


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def assert_json_error(raw: bytes, status: int, code: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code
    return headers


def samples(url: str) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=WAIT_S).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(metrics: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in metrics.items()
        if n == name and all(dict(ls).get(k) == x for k, x in labels.items())
    )


def wait_idle(url: str) -> None:
    """Until no question is computing or waiting."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        m = samples(url)
        if total(m, "verbatim_ask_in_flight") == total(m, "verbatim_ask_queued") == 0:
            return
        time.sleep(0.2)
    pytest.fail("the server never became idle")


# -- 7: malformed HTTP gets the error shape, not uvicorn's plain text ----------------------------
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n{}",
        b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ],
)
def test_malformed_http_gets_a_json_400(hardened_server: str, request_bytes: bytes) -> None:
    with connect(hardened_server) as sock:
        sock.sendall(request_bytes)
        assert_json_error(read_all(sock), 400, "bad_request")


def test_oversized_headers_get_a_json_431(hardened_server: str) -> None:
    with connect(hardened_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40_000)
        sock.sendall(b"\r\n\r\n")
        assert_json_error(read_all(sock), 431, "headers_too_large")


# -- 5: deadlines for headers and bodies, a cap on connections -----------------------------------
def test_slow_headers_get_408_and_are_closed(hardened_server: str) -> None:
    socks = [connect(hardened_server) for _ in range(10)]
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    for sock in socks:
        with sock:
            assert_json_error(read_all(sock), 408, "request_timeout")


def test_slow_headers_on_a_kept_alive_connection_get_408(hardened_server: str) -> None:
    with connect(hardened_server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert_json_error(read_all(sock), 408, "request_timeout")


def test_idle_connections_are_closed(hardened_server: str) -> None:
    with connect(hardened_server) as fresh:
        assert read_all(fresh) == b""
    with connect(hardened_server) as kept:
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = parse(read_all(kept))  # answered, then closed when idle
        assert status == 200 and body == b'{"status":"ok"}'


def test_slow_body_gets_408_and_is_closed(hardened_server: str) -> None:
    with connect(hardened_server) as sock:
        sock.sendall(
            b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"question": '
        )
        headers = assert_json_error(read_all(sock), 408, "request_timeout")
        assert headers["connection"] == "close"


def test_connections_past_the_cap_get_503_then_are_served(hardened_server: str) -> None:
    cap = int(HARDENED["VERBATIM_MAX_CONNECTIONS"])
    idle = [connect(hardened_server) for _ in range(cap)]
    try:
        with connect(hardened_server) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            headers = assert_json_error(read_all(extra), 503, "overloaded")
            assert int(headers["retry-after"]) >= 1
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while httpx.get(f"{hardened_server}/health", timeout=WAIT_S).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


# -- 4: a client that leaves is not a 500, and its queued question is not computed ----------------
def test_vanished_clients_are_499_and_their_queued_questions_dropped(
    hardened_server: str,
) -> None:
    wait_idle(hardened_server)
    before = samples(hardened_server)
    body = json.dumps({"question": "What does the acronym CELAC stand for?"}).encode()
    request = (
        b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    socks = [connect(hardened_server) for _ in range(8)]
    for sock in socks:
        sock.sendall(request)
    with connect(hardened_server) as partial:  # leaves half-way through its body
        partial.sendall(request[: len(request) - 10])
        for sock in socks:
            sock.close()
    wait_idle(hardened_server)
    after = samples(hardened_server)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("verbatim_http_requests_total", status="500") == 0
    assert delta("verbatim_http_requests_total", endpoint="/ask", status="499") >= 8
    assert delta("verbatim_ask_dropped_total") >= 7  # all but the one already computing
    assert delta("verbatim_answers_total") <= 1


# -- 1: client-chosen methods and paths cannot grow /metrics -------------------------------------
def test_metrics_stay_bounded_over_the_wire(hardened_server: str) -> None:
    def series() -> set[str]:
        text = c.get("/metrics", headers=AUTH).text
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line[:1] != "#"}

    with httpx.Client(base_url=hardened_server, timeout=WAIT_S) as c:
        c.request("WARMUP", "/health")
        c.request("WARMUP", "/health/0")
        series()
        before = series()
        for i in range(200):
            c.request(f"M{i}", f"/health/{i}")
            c.request(f"X{i}", "/health")
        assert series() == before  # counts change, never the set of series


# -- 6: a start-up that cannot succeed exits non-zero with a clear message -----------------------
def test_serve_with_a_missing_corpus_exits_1(tmp_path) -> None:
    missing = tmp_path / "no-such-corpus"
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "VERBATIM_CORPUS_DIR": str(missing),
            "VERBATIM_INDEX_DIR": str(tmp_path / "index"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("verbatim serve: loading the index and models failed")
    assert "no-such-corpus" in last
