"""Issue 16's defects and safe defaults through the real app, pipeline and index, in-process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest
from api_fixtures import ANNIVERSARY_ID, BASE_URL
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app
from api.limits import ClientGone, RateLimited, RateLimiter
from api.metrics import METHODS
from api.worker import BatchingWorker
from rag.config import PROJECT_ROOT, Settings
from rag.pipeline import Ask, AskPipeline

pytestmark = pytest.mark.reliability  # part of make reliability too
TOKEN = "s3cret-metrics-token-0123"


def error_of(response, status: int) -> dict:
    """The error object of a response in the shared shape with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


@pytest.fixture(scope="module")
def anniversary(dev_questions: list[dict]) -> str:
    return next(q for q in dev_questions if q["id"] == ANNIVERSARY_ID)["question"]


def app_with(seed_settings: Settings, seed_pipeline: AskPipeline, **updates: object) -> FastAPI:
    return create_app(seed_settings.model_copy(update=updates), seed_pipeline)


# -- 1: metrics labels from closed sets --------------------------------------------------------
def label_values(text: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if label in sample.labels
    }


def test_invented_methods_do_not_grow_metrics(seed_settings, seed_pipeline) -> None:
    with TestClient(app_with(seed_settings, seed_pipeline), base_url=BASE_URL) as c:
        c.request("M0", "/health")
        c.get("/nothing/0")
        c.get("/metrics")  # so the scrape itself has its series too
        before = c.get("/metrics").text
        for i in range(1, 300):
            assert c.request(f"M{i}", f"/health?x={i}").status_code == 405
            assert c.get(f"/nothing/{i}").status_code == 404
        after = c.get("/metrics").text
    grew = {line.split(" ")[0] for line in after.splitlines()} - {
        line.split(" ")[0] for line in before.splitlines()
    }
    assert not [g for g in grew if g.startswith("verbatim_http")], grew
    assert label_values(after, "method") <= METHODS | {"other"}
    assert label_values(after, "endpoint") <= {"/health", "/metrics", "unmatched"}
    assert all(s.isdigit() or s.endswith("xx") for s in label_values(after, "status"))


# -- 2, 7: bad input gets a 422 in the error shape, never a 500 or stock text ------------------
BAD_BODIES = [
    (b'{"question": "What is \\ud800 CELAC?"}', "invalid_question", "not valid text"),
    (b'{"question": "What is \xff CELAC?"}', "invalid_request", "UTF-8"),
    (b'{"question": ' + b"[" * 1000 + b"]" * 1000 + b"}", "invalid_request", ""),
    (b'{"question": "What is CELAC?", "top_k": ' + b"7" * 5000 + b"}", "invalid_request", "JSON"),
    (b'{"question": "What is CELAC?", "top_k": "5"}', "invalid_request", "top_k"),
    (b'{"question": "What is CELAC?", "top_k": 5.0}', "invalid_request", "top_k"),
    (b'{"question": "What is CELAC?", "top_k": true}', "invalid_request", "top_k"),
    (b'{"question": "What is CELAC?", "mode": 1}', "invalid_request", "mode"),
    (b'{"question": "x"}', "invalid_question", "no word to look up"),
    (b'{"question": "What is the?"}', "invalid_question", "no word to look up"),
]


@pytest.mark.parametrize(("body", "code", "mentions"), BAD_BODIES)
def test_bad_bodies_get_422(client: TestClient, body: bytes, code: str, mentions: str) -> None:
    response = client.post("/ask", content=body, headers={"content-type": "application/json"})
    error = error_of(response, 422)
    assert error["code"] == code and mentions in error["message"]


def test_cli_refuses_undecodable_bytes_with_status_2(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "--index-dir", str(tmp_path / "i"), "ask", b"CELAC \xff"],
        capture_output=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert b"not valid text" in done.stderr and b"Traceback" not in done.stderr


# -- 8: closed by default ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost:8000", 200),
        ("127.0.0.1", 200),
        ("[::1]:8000", 200),
        ("LOCALHOST", 200),
        ("attacker.example", 400),
        ("attacker.example:8000", 400),
        ("localhost.attacker.example", 400),
        ("", 400),
    ],
)
def test_host_header_must_name_this_server(client: TestClient, host: str, status: int) -> None:
    response = client.get("/health", headers={"host": host})
    assert response.status_code == status
    if status == 400:
        assert error_of(response, 400)["code"] == "invalid_host"


def test_allowed_hosts_are_configurable(seed_settings, seed_pipeline) -> None:
    app = app_with(seed_settings, seed_pipeline, allowed_hosts=["*.example.org", "qa.test"])
    with TestClient(app, base_url="http://qa.test") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/health", headers={"host": "a.example.org"}).status_code == 200
        assert c.get("/health", headers={"host": "localhost"}).status_code == 400


def test_cors_allows_no_origin_by_default(client: TestClient, anniversary: str) -> None:
    origin = {"Origin": "https://any.example"}
    preflight = client.options("/ask", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    answered = client.post("/ask", json={"question": anniversary}, headers=origin)
    assert "access-control-allow-origin" not in answered.headers


def test_metrics_token(seed_settings, seed_pipeline) -> None:
    with TestClient(
        app_with(seed_settings, seed_pipeline, metrics_token=SecretStr(TOKEN)), base_url=BASE_URL
    ) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = c.get("/metrics", headers=headers)
            assert error_of(response, 401)["code"] == "unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
        good = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status_code == 200 and "verbatim_http_requests_total" in good.text


def test_container_documents_allowed_hosts() -> None:
    docker = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "VERBATIM_ALLOWED_HOSTS" in docker


# -- 9: hardening headers, the docs bundle, HEAD ---------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/health", "/metrics", "/documents", "/widget.js", "/", "/docs", "/nothing", "/ask"]
)
def test_nosniff_and_a_csp_everywhere(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_pages_have_their_own_csp(client: TestClient, seed_pipeline: AskPipeline) -> None:
    demo = client.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in demo and "unsafe-eval" not in demo
    assert "<script>" not in client.get("/").text  # no inline script to allow
    docs = client.get("/docs")
    assert "script-src 'self' 'sha256-" in docs.headers["content-security-policy"]
    view = client.get(f"/documents/{seed_pipeline.documents[0].doc_id}/view")
    assert "frame-ancestors 'none'" in view.headers["content-security-policy"]


@pytest.mark.parametrize(
    "asset",
    ["index.html", "oauth2-redirect.html", "swagger-initializer.js", "index.j2", "..%2Findex.html"],
)
def test_stock_swagger_pages_are_not_served(client: TestClient, asset: str) -> None:
    assert client.get(f"/docs-assets/{asset}").status_code == 404


@pytest.mark.parametrize("path", ["/health", "/documents", "/", "/widget.js", "/openapi.json"])
def test_head_on_get_routes(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]


def test_head_on_a_post_route_is_405(client: TestClient) -> None:
    response = client.head("/ask")
    assert response.status_code == 405 and "POST" in response.headers["allow"]


# -- per-client rate limit on /ask --------------------------------------------------------------
def test_rate_limit_is_per_client_with_retry_after(seed_settings, seed_pipeline, anniversary):
    app = app_with(seed_settings, seed_pipeline, rate_limit_per_minute=1, rate_limit_burst=2)
    body = {"question": anniversary}
    with TestClient(app, base_url=BASE_URL, client=("10.0.0.1", 1000)) as one:
        assert [one.post("/ask", json=body).status_code for _ in range(2)] == [200, 200]
        limited = one.post("/ask", json=body)
        assert error_of(limited, 429)["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert one.get("/documents").status_code == 200  # only /ask is limited
        metrics = one.get("/metrics").text
        assert "verbatim_ask_rate_limited_total 1.0" in metrics
    with TestClient(app, base_url=BASE_URL, client=("10.0.0.2", 1000)) as other:
        assert other.post("/ask", json=body).status_code == 200


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_and_forgets_idle_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=30, burst=2, clock=clock)  # a token every 2 s
    limiter.take("a"), limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.headers == {"Retry-After": "2"}
    clock.now += 2
    limiter.take("a")
    RateLimiter(per_minute=0, burst=1).take("a")  # 0: no limit
    for _ in range(5):
        RateLimiter(per_minute=0, burst=1, clock=clock).take("a")
    limiter.MAX_CLIENTS = 10
    for i in range(100):
        limiter.take(f"client-{i}")
        clock.now += 10  # every earlier bucket is full again
    assert len(limiter._buckets) <= 10


# -- 4: queued work whose client has gone is dropped --------------------------------------------
def test_the_worker_drops_work_whose_client_is_gone(seed_pipeline) -> None:
    release = threading.Event()
    asked: list[str] = []
    original = seed_pipeline.ask_many

    def held(asks):
        release.wait(30)
        asked.extend(a.question for a in asks)
        return original(asks)

    async def gone() -> bool:
        return True

    async def main() -> list[object]:
        worker = BatchingWorker(seed_pipeline, max_batch=1, window_ms=0, max_queue=8)
        worker.start()
        try:
            busy = asyncio.ensure_future(worker.ask(Ask("Who is Russia's foreign minister?")))
            while worker.busy == 0:
                await asyncio.sleep(0.01)
            left = [
                asyncio.ensure_future(worker.ask(Ask("Who left?"), gone=gone)) for _ in range(3)
            ]
            kept = asyncio.ensure_future(worker.ask(Ask("Who went to Beijing in 1989?")))
            while worker.waiting < 4:
                await asyncio.sleep(0.01)
            release.set()
            return await asyncio.gather(*left, kept, busy, return_exceptions=True)
        finally:
            release.set()
            await asyncio.to_thread(worker.stop)

    seed_pipeline.ask_many = held
    try:
        results = asyncio.run(main())
    finally:
        seed_pipeline.ask_many = original
    assert [type(r) for r in results[:3]] == [ClientGone] * 3
    assert asked == ["Who is Russia's foreign minister?", "Who went to Beijing in 1989?"]


def test_openapi_documents_the_new_statuses(client: TestClient) -> None:
    ask = client.get("/openapi.json").json()["paths"]["/ask"]["post"]["responses"]
    assert {"408", "413", "422", "429", "503"} <= set(ask)
    assert ask["429"]["headers"]["Retry-After"]["required"] is True
    assert json.dumps(ask["422"]).count("invalid_question") >= 1
