"""Back-pressure: a cap on request bodies and on model work in flight, with a bounded queue."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response

T = TypeVar("T")


class BodySizeLimit:
    """ASGI middleware: answer 413 for a body over ``max_bytes``, declared or streamed.

    The body is read (at most ``max_bytes`` + 1 bytes) before the app sees it, then replayed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > self.max_bytes
        chunks: list[bytes] = []
        size, more = 0, not too_large
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            too_large = size > self.max_bytes
            more = more and not too_large
        if too_large:
            response = error_response(
                413,
                "body_too_large",
                f"the request body is over the limit of {self.max_bytes} bytes",
            )
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


class Limiter:
    """Runs blocking work in the threadpool, ``max_in_flight`` at a time, ``max_queue`` waiting.

    Create it inside the running event loop (the app's lifespan).
    """

    def __init__(self, max_in_flight: int, max_queue: int):
        self.max_in_flight, self.max_queue = max_in_flight, max_queue
        self._slots = asyncio.Semaphore(max_in_flight)
        self.in_flight = 0
        self.waiting = 0
        self._seconds = 1.0  # moving average of one job's duration, for Retry-After

    def retry_after(self) -> int:
        """Seconds until a queued job would likely start: a whole number, at least 1."""
        backlog = (self.waiting + self.in_flight) / self.max_in_flight
        return max(1, math.ceil(backlog * self._seconds))

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread once a slot is free; :class:`Overloaded` if full."""
        if self._slots.locked() and self.waiting >= self.max_queue:
            raise Overloaded(self.retry_after())
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await run_in_threadpool(fn, *args)
        finally:
            self.in_flight -= 1
            self._seconds = 0.8 * self._seconds + 0.2 * (loop.time() - started)
            self._slots.release()
