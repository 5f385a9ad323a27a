"""Contract tests of the HTTP API, through the real app, pipeline, model and index."""

from __future__ import annotations

import asyncio
import threading
import time
from html import escape
from pathlib import Path

import pytest
from api_fixtures import ANNIVERSARY_ID, BASE_URL
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.schemas import AskResponse, view_url
from api.worker import BatchingWorker
from embeddings.encoder import Encoder
from rag.cli import build_parser
from rag.config import Settings
from rag.pipeline import Ask, AskPipeline

ASK_ERRORS = [
    ({}, "question is required"),
    ({"question": ""}, "empty"),
    ({"question": "   \n "}, "empty"),
    ({"question": 42}, "question"),
    ({"question": "Who?", "mode": "semantic"}, "mode"),
    ({"question": "Who?", "top_k": 0}, "top_k"),
    ({"question": "Who?", "top_k": 51}, "top_k"),
    ({"question": "Who?", "top_k": "many"}, "top_k"),
    ({"question": "Who?", "topk": 3}, "topk"),
    (["Who?"], "object"),
]


def assert_error(response, status: int, code: str | None = None) -> str:
    """The response is the shared error shape with this status; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]["message"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture(scope="module")
def anniversary(dev_questions: list[dict]) -> dict:
    return next(q for q in dev_questions if q["id"] == ANNIVERSARY_ID)


@pytest.fixture(scope="module")
def answered(client: TestClient, anniversary: dict) -> dict:
    response = client.post("/ask", json={"question": anniversary["question"]})
    assert response.status_code == 200, response.text
    return {"json": response.json(), "headers": response.headers}


# -- operations ------------------------------------------------------------------------------
def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_not_ready_until_warm(seed_settings: Settings, encoder: Encoder) -> None:
    """Without the lifespan nothing has loaded: alive, but 503 with Retry-After elsewhere."""
    raw = TestClient(
        create_app(seed_settings, AskPipeline(seed_settings, encoder=encoder)), base_url=BASE_URL
    )
    assert raw.get("/health").status_code == 200
    for response in (
        raw.get("/ready"),
        raw.post("/ask", json={"question": "Who?"}),
        raw.get("/documents"),
    ):
        assert_error(response, 503, "not_ready")
        assert response.headers["retry-after"].isdigit()


def test_warms_up_at_start_up(small_corpus: Path, tmp_path: Path, encoder: Encoder) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    pipeline = AskPipeline(settings, encoder=encoder)
    with TestClient(create_app(settings, pipeline), base_url=BASE_URL) as c:
        deadline = time.monotonic() + 120
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.2)
        assert c.get("/documents").json()["count"] == 3


def test_failed_warm_up_is_reported(tmp_path: Path, encoder: Encoder) -> None:
    """A start-up that cannot succeed fails /health too, says so for good (no Retry-After),
    and names no server path (defect 6)."""
    settings = Settings(corpus_dir=tmp_path / "missing", index_dir=tmp_path / "index")
    failures: list[str] = []
    app = create_app(settings, AskPipeline(settings, encoder=encoder), on_failure=failures.append)
    with TestClient(app, base_url=BASE_URL) as c:
        deadline = time.monotonic() + 60
        while c.get("/ready").json()["error"]["code"] == "not_ready":
            assert time.monotonic() < deadline, "never failed"
            time.sleep(0.1)
        for response in (
            c.get("/health"),
            c.get("/ready"),
            c.post("/ask", json={"question": "Who?"}),
        ):
            assert "failed" in assert_error(response, 503, "startup_failed")
            assert "retry-after" not in response.headers
            assert (
                str(tmp_path) not in response.text
                and "/" not in response.json()["error"]["message"]
            )
    assert failures and "missing" in failures[0]  # the console hears the details


def test_metrics(client: TestClient, answered: dict) -> None:
    client.get("/documents/no-such-doc.txt")
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    assert metric(text, "verbatim_http_requests_total", endpoint="/ask", status="200") >= 1
    assert (
        metric(
            text, "verbatim_http_requests_total", endpoint="/documents/{doc_id:path}", status="404"
        )
        >= 1
    )
    assert metric(text, "verbatim_http_request_duration_seconds_count", endpoint="/ask") >= 1
    outcomes = sum(
        metric(text, "verbatim_answers_total", outcome=o) for o in ("answered", "abstained")
    )
    assert outcomes >= 1
    assert 'verbatim_answers_total{outcome="abstained"}' in text
    assert metric(text, "verbatim_ask_stage_seconds_count", stage="read") >= 1


# -- /ask ------------------------------------------------------------------------------------
def test_ask_answers_with_a_verbatim_cited_span(
    client: TestClient,
    answered: dict,
    anniversary: dict,
) -> None:
    body = answered["json"]
    answer = AskResponse.model_validate(body)
    assert answer.request_id == answered["headers"]["x-request-id"]
    assert not answer.abstained and answer.answer is not None
    assert any(a in answer.answer for a in anniversary["answers"])
    assert 0.0 <= answer.score <= 1.0
    assert set(body["timings_ms"]) == {"retrieve", "read", "total"}
    assert answer.passages
    cite = answer.citations[0]
    assert cite.doc_id in [anniversary["doc"], *anniversary["also_in"]]
    assert cite.url == view_url(cite.doc_id, cite.start, cite.end)
    doc = client.get(f"/documents/{cite.doc_id}").json()
    assert doc["text"][cite.start : cite.end] == answer.answer
    assert doc["text"][cite.sentence_start : cite.sentence_end] == cite.sentence
    assert all(alt.url == view_url(alt.doc_id, alt.start, alt.end) for alt in answer.alternatives)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_ask_mode_and_top_k(client: TestClient, anniversary: dict, mode: str) -> None:
    response = client.post(
        "/ask", json={"question": anniversary["question"], "mode": mode, "top_k": 2}
    )
    assert response.status_code == 200, response.text
    assert 1 <= len(response.json()["passages"]) <= 2


@pytest.mark.parametrize(("body", "mentions"), ASK_ERRORS)
def test_ask_rejects_bad_input(client: TestClient, body: object, mentions: str) -> None:
    message = assert_error(client.post("/ask", json=body), 422)
    assert mentions in message


def test_ask_rejects_too_long_question(client: TestClient, seed_settings: Settings) -> None:
    limit = seed_settings.max_question_chars
    message = assert_error(
        client.post("/ask", json={"question": "w" * (limit + 1)}), 422, "invalid_question"
    )
    assert str(limit) in message


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"question": ', "application/json"),
        (b'{"question": "Who?"}', "text/plain"),
        (b"question=Who", "application/x-www-form-urlencoded"),
    ],
)
def test_ask_rejects_non_json(client: TestClient, content: bytes, content_type: str) -> None:
    response = client.post("/ask", content=content, headers={"content-type": content_type})
    assert "JSON" in assert_error(response, 422, "invalid_request")


def test_ask_rejects_oversized_body(client: TestClient, seed_settings: Settings) -> None:
    big = b'{"question": "' + b"x" * seed_settings.max_body_bytes + b'"}'
    headers = {"content-type": "application/json"}
    assert_error(client.post("/ask", content=big, headers=headers), 413, "body_too_large")
    chunked = (big[i : i + 1024] for i in range(0, len(big), 1024))  # no Content-Length
    assert_error(client.post("/ask", content=chunked, headers=headers), 413, "body_too_large")


def test_request_id_header(client: TestClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert (
        client.get("/health", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"]
        != "bad id!"
    )


# -- back-pressure ---------------------------------------------------------------------------
def test_full_queue_answers_503_with_retry_after(
    seed_settings: Settings, seed_pipeline: AskPipeline, anniversary: dict
) -> None:
    settings = seed_settings.model_copy(update={"max_in_flight": 1, "max_queue": 1})
    app = create_app(settings, seed_pipeline)
    release = threading.Event()
    original = seed_pipeline.ask_many

    def held(asks):  # the first batch waits, so the queue fills behind it
        release.wait(30)
        return original(asks)

    seed_pipeline.ask_many = held
    try:
        with TestClient(app, base_url=BASE_URL) as c:
            worker = app.state.service.worker
            q = Ask(anniversary["question"])
            deadline = time.monotonic() + 10
            busy = []
            for expected in ((1, 0), (1, 1)):  # one question computing, then one waiting
                busy.append(c.portal.start_task_soon(worker.ask, q))
                while (worker.busy, worker.waiting) != expected:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            response = c.post("/ask", json={"question": anniversary["question"]})
            assert_error(response, 503, "overloaded")
            assert int(response.headers["retry-after"]) >= 1
            assert metric(c.get("/metrics").text, "verbatim_ask_rejected_total") == 1
            release.set()
            for job in busy:
                job.result(timeout=30)
            assert c.post("/ask", json={"question": anniversary["question"]}).status_code == 200
    finally:
        release.set()
        seed_pipeline.ask_many = original


def test_the_worker_batches_at_most_max_in_flight(
    seed_pipeline: AskPipeline, dev_questions
) -> None:
    sizes: list[int] = []
    original = seed_pipeline.ask_many

    def counted(asks):
        sizes.append(len(asks))
        return original(asks)

    worker = BatchingWorker(seed_pipeline, max_batch=2, window_ms=50, max_queue=8)
    seed_pipeline.ask_many = counted
    worker.start()

    async def main() -> list:
        asks = [Ask(q["question"]) for q in dev_questions[:6]]
        return await asyncio.gather(*(worker.ask(a) for a in asks))

    try:
        answers = asyncio.run(main())
    finally:
        seed_pipeline.ask_many = original
        worker.stop()
    assert len(answers) == 6 and max(sizes) == 2 and sum(sizes) == 6


# -- documents -------------------------------------------------------------------------------
def test_documents_list(client: TestClient, seed_pipeline: AskPipeline) -> None:
    body = client.get("/documents").json()
    assert body["count"] == len(body["documents"]) == len(seed_pipeline.documents)
    for d in body["documents"]:
        doc = seed_pipeline.document(d["doc_id"])
        assert d["title"] == doc.title and d["length"] == len(doc.text) and d["chunks"] >= 1
        assert d["url"] == view_url(d["doc_id"])


def test_document_detail(client: TestClient, seed_pipeline: AskPipeline) -> None:
    doc = seed_pipeline.documents[0]
    body = client.get(f"/documents/{doc.doc_id}").json()
    assert body["text"] == doc.text and body["content_hash"] == doc.content_hash
    assert body["chunks"] == seed_pipeline.chunk_count(doc.doc_id)


@pytest.mark.parametrize(
    "path",
    ["/documents/nope.txt", "/documents/a/b/nope.txt", "/documents/nope.txt/view?start=0&end=1"],
)
def test_unknown_document_is_404(client: TestClient, path: str) -> None:
    assert "nope.txt" in assert_error(client.get(path), 404, "unknown_document")


def test_view_highlights_the_span(client: TestClient, answered: dict) -> None:
    cite = answered["json"]["citations"][0]
    response = client.get(cite["url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'nonce-" in response.headers["content-security-policy"]
    assert '<mark id="cited">' in response.text and "scrollIntoView" in response.text
    assert f'<mark id="cited">{escape(cite["text"])}</mark>' in response.text


def test_view_without_span(client: TestClient, seed_pipeline: AskPipeline) -> None:
    response = client.get(view_url(seed_pipeline.documents[0].doc_id))
    assert response.status_code == 200 and "<mark" not in response.text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("start=0&end=100000000", 404),
        ("start=100000000&end=100000001", 404),
        ("start=5&end=5", 422),
        ("start=9&end=5", 422),
        ("start=-1&end=5", 422),
        ("start=5", 422),
        ("start=a&end=5", 422),
    ],
)
def test_view_rejects_bad_spans(
    client: TestClient,
    seed_pipeline: AskPipeline,
    query: str,
    status: int,
) -> None:
    assert_error(client.get(f"{view_url(seed_pipeline.documents[0].doc_id)}?{query}"), status)


def test_nested_ids_and_markup_are_safe(
    small_corpus: Path, tmp_path: Path, encoder: Encoder
) -> None:
    """Ids with ``/`` route to the document; document text is escaped in the view."""
    (small_corpus / "sub" / "odd name.txt").write_text(
        "Markup Notes\n\nThe string <script>alert(1)</script> is shown as text & not run.\n",
        encoding="utf-8",
    )
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    pipeline = AskPipeline(settings, encoder=encoder)
    pipeline.warm_up()
    with TestClient(create_app(settings, pipeline), base_url=BASE_URL) as c:
        ids = {d["doc_id"]: d["url"] for d in c.get("/documents").json()["documents"]}
        assert "sub/odd name.txt" in ids and "sub/b.md" in ids
        assert "seventeen varieties" in c.get("/documents/sub/b.md").json()["text"]
        page = c.get(ids["sub/odd name.txt"] + "?start=14&end=40").text
        assert "<script>alert" not in page and "&lt;script&gt;alert(1" in page


# -- the rest --------------------------------------------------------------------------------
def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/nothing-here"), 404, "not_found")
    assert_error(client.get("/ask"), 405, "method_not_allowed")


def test_cors(seed_settings: Settings, seed_pipeline: AskPipeline) -> None:
    settings = seed_settings.model_copy(update={"cors_origins": ["https://allowed.example"]})
    with TestClient(create_app(settings, seed_pipeline), base_url=BASE_URL) as c:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        ok = c.options("/ask", headers={"Origin": "https://allowed.example", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://allowed.example"
        denied = c.options("/ask", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in denied.headers
        assert "origin" in assert_error(denied, 400, "cors_rejected")
        error = c.post("/ask", json={}, headers={"Origin": "https://allowed.example"})
        assert error.headers["access-control-allow-origin"] == "https://allowed.example"
        assert "retry-after" in error.headers["access-control-expose-headers"].lower()
        text = c.get("/metrics").text
        for status in ("200", "400"):
            assert (
                metric(
                    text,
                    "verbatim_http_requests_total",
                    method="OPTIONS",
                    endpoint="/ask",
                    status=status,
                )
                == 1
            )


def test_openapi_has_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/ask",
        "/documents",
        "/documents/{doc_id}",
        "/documents/{doc_id}/view",
        "/health",
        "/ready",
        "/metrics",
    } <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert schemas["AskRequest"]["examples"] and schemas["AskResponse"]["examples"]
    request_examples = spec["paths"]["/ask"]["post"]["requestBody"]["content"]["application/json"]
    assert {"answerable", "abstains"} <= set(request_examples["examples"])
    responses = spec["paths"]["/ask"]["post"]["responses"]
    assert {"200", "413", "422", "503"} <= set(responses)
    error = responses["422"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/ErrorBody") and error["example"]["error"]["code"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()  # /docs works offline: its assets come from here
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200


def test_widget_and_demo_are_served(client: TestClient) -> None:
    widget = client.get("/widget.js")
    assert widget.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in widget.text and "innerHTML" not in widget.text
    assert '<script src="/widget.js"' in client.get("/").text


def test_serve_command_is_registered() -> None:
    args = build_parser().parse_args(
        ["serve", "--host", "0.0.0.0", "--port", "9001", "--workers", "2"]
    )
    assert (args.host, args.port, args.workers, args.func.__name__) == ("0.0.0.0", 9001, 2, "serve")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", "70000"])
