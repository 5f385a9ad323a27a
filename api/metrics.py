"""Prometheus metrics: requests by endpoint and status, latencies, answers vs abstentions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPStatus

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Labels come from closed sets, never from what a client sends: any other method is "other".
METHODS = frozenset(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
# nginx's code for a request whose client left before the answer.
CLIENT_CLOSED = 499
STATUSES = frozenset(s.value for s in HTTPStatus) | {CLIENT_CLOSED}


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def status_label(status: int) -> str:
    """The status code, or its class (``5xx``) for a code outside the registered ones."""
    return str(status) if status in STATUSES else f"{min(max(status // 100, 1), 5)}xx"


class Metrics:
    """The service's metrics in their own registry (one per app, so tests can build many)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "verbatim_http_requests",
            "HTTP requests answered.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "verbatim_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "verbatim_answers",
            "Questions answered, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.stage = Histogram(
            "verbatim_ask_stage_seconds",
            "Time spent in each stage of answering a question.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "verbatim_ask_in_flight", "Questions being answered now.", registry=self.registry
        )
        self.queued = Gauge(
            "verbatim_ask_queued", "Questions waiting for a free slot.", registry=self.registry
        )
        self.rejected = Counter(
            "verbatim_ask_rejected",
            "Questions turned away because the queue was full.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "verbatim_ask_rate_limited",
            "Questions turned away because their client asked too often.",
            registry=self.registry,
        )
        self.dropped = Counter(
            "verbatim_ask_dropped",
            "Queued questions not answered because their client had gone.",
            registry=self.registry,
        )
        for outcome in ("answered", "abstained"):
            self.answers.labels(outcome)

    def observe_answer(self, abstained: bool, timings_ms: dict[str, float]) -> None:
        self.answers.labels("abstained" if abstained else "answered").inc()
        for stage in ("retrieve", "read"):
            self.stage.labels(stage).observe(timings_ms[stage] / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _routes(app: ASGIApp) -> Iterator[BaseRoute]:
    """The app's routes, each included router's one by one (recent FastAPI keeps them nested;
    the routers are included without a prefix, so each route's own path is its template)."""
    for route in getattr(app, "routes", ()):
        nested = getattr(route, "original_router", None)
        yield from _routes(nested) if nested is not None else (route,)


def endpoint_of(app: ASGIApp, scope: Scope) -> str:
    """The route template of a request (``/documents/{doc_id:path}``), never the raw path."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "other")
    partial = None  # the path matches but not the method (a CORS preflight, a 405)
    for candidate in _routes(app):
        match = candidate.matches(scope)[0]
        if match == Match.FULL:
            return getattr(candidate, "path", "other")
        if match == Match.PARTIAL and partial is None:
            partial = getattr(candidate, "path", "other")
    return partial or "unmatched"


class MetricsMiddleware:
    """ASGI middleware that counts every response and times it, errors included."""

    def __init__(self, app: ASGIApp, metrics: Metrics, router: ASGIApp):
        self.app, self.metrics, self.router = app, metrics, router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        gone = False
        started = time.perf_counter()

        async def watch_receive() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, watch_receive, record_status)
        finally:
            # No response started: the client left (the server answers nobody), else a failure.
            status = status or (CLIENT_CLOSED if gone else 500)
            endpoint = endpoint_of(self.router, scope)
            method = method_label(scope["method"])
            self.metrics.requests.labels(method, endpoint, status_label(status)).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - started)
