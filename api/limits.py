"""Back-pressure: caps on request bodies, on model work in flight (a bounded queue), per client."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.metrics import CLIENT_CLOSED

T = TypeVar("T")


# Multipart framing around the files of an upload: boundaries, part headers, a title field.
MULTIPART_OVERHEAD = 64 * 1024


def is_upload(method: str, path: str) -> bool:
    """Whether a request may carry documents (POST/PUT /documents...), and so a larger body."""
    return method in ("POST", "PUT") and (path == "/documents" or path.startswith("/documents/"))


class BodySizeLimit:
    """ASGI middleware: answer 413 for a body over ``max_bytes`` (``upload_bytes`` for uploads,
    see :func:`is_upload`), declared or streamed, and 408 for one that has not arrived within
    ``timeout_s``.

    The body is read (at most the limit + 1 bytes) before the app sees it, then replayed.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, timeout_s: float, upload_bytes: int | None = None
    ):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s
        self.upload_bytes = upload_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        upload = is_upload(scope["method"], scope["path"])
        limit = self.upload_bytes if upload else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > limit
        chunks: list[bytes] = []
        size, more = 0, not too_large
        with anyio.move_on_after(self.timeout_s) as deadline:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = message.get("more_body", False)
                too_large = size > limit
                more = more and not too_large
        if deadline.cancelled_caught:
            message = f"the request body did not arrive within {self.timeout_s:g} s"
            # The rest of the body may still come: the connection cannot carry another request.
            response = error_response(408, "request_timeout", message, {"Connection": "close"})
            await response(scope, receive, send)
            return
        if too_large:
            message = f"the request body is over the limit of {limit} bytes"
            if upload:
                message += "; upload fewer or smaller files per request"
            response = error_response(413, "body_too_large", message)
            await response(scope, receive, send)
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class Overloaded(ApiError):
    """Every slot is busy and the queue is full: come back after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(
            503,
            "overloaded",
            f"the server is busy; try again in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )


class ClientGone(ApiError):
    """The client left while its question waited: nobody would read the answer."""

    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED, "client_closed_request", "the client closed the request")


class RateLimited(ApiError):
    """This client has asked too often: its next question is welcome in ``retry_after`` s."""

    def __init__(self, retry_after: int):
        super().__init__(
            429,
            "rate_limited",
            f"too many questions from this address; try again in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )


class RateLimiter:
    """A token bucket per client address: ``burst`` questions at once, then ``per_minute``.

    Full buckets are forgotten, so memory follows the clients active in the last refill time.
    """

    MAX_CLIENTS = 100_000

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = per_minute / 60, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def _tokens(self, client: str, now: float) -> float:
        tokens, when = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def take(self, client: str) -> None:
        """Spend one of ``client``'s tokens, or raise :class:`RateLimited`."""
        if self.rate == 0:
            return
        now = self.clock()
        tokens = self._tokens(client, now)
        if tokens < 1:
            raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)))
        if len(self._buckets) >= self.MAX_CLIENTS:
            self._forget_full(now)
        self._buckets[client] = (tokens - 1, now)

    def _forget_full(self, now: float) -> None:
        full = [c for c in self._buckets if self._tokens(c, now) >= self.burst]
        for client in full or list(self._buckets)[: self.MAX_CLIENTS // 10]:
            del self._buckets[client]
