"""The HTTP server's guards: uvicorn options from Settings, an h11 protocol with deadlines."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.config import Settings, get_settings

LINGER_S = 2.0


def raw_error(status: int, reason: str, code: str, message: str, retry_after: int = 0) -> bytes:
    """A whole HTTP/1.1 error response in the API's error shape, that closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "x-content-type-options: nosniff",
        "connection: close",
    ]
    if retry_after:
        headers.append(f"retry-after: {retry_after}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus: a 408 and a close for a connection whose request line and
    headers are not all in within ``header_timeout_s`` (uvicorn has no such deadline); a 431 for
    headers over ``max_header_bytes``, even in one piece; a 503 with ``Retry-After`` past
    ``max_connections`` open connections; a malformed request's 400 in the API's error shape.

    Its limits are the process's Settings (``VERBATIM_*``), so every worker process has them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_s
        self.max_header_bytes = settings.max_header_bytes
        self.max_connections = settings.max_connections
        self.refused = False
        self.rejected = False
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Refused: it must not count against the cap that uvicorn checks per request.
            self.connections.discard(self)
            self.refused = True
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return  # the rest of a refused request, read and dropped until the client leaves
        if self.refused:
            message = "the server has too many open connections; try again shortly"
            self._reject(raw_error(503, "Service Unavailable", "overloaded", message, 1))
            return
        if self.conn.our_state is h11.IDLE and self._headers_too_large(data):
            message = f"the request line and headers are over {self.max_header_bytes} bytes"
            self._reject(
                raw_error(431, "Request Header Fields Too Large", "headers_too_large", message)
            )
            return
        if self.conn.our_state is h11.IDLE and self.header_deadline is None:
            self._arm()  # a new request on a kept-alive connection: its headers' deadline starts
        super().data_received(data)
        if self.conn.our_state is h11.SEND_RESPONSE:  # the request line and headers are in
            self._disarm()

    def _headers_too_large(self, data: bytes) -> bool:
        """h11 caps only headers still incomplete; this caps those that come in one piece too."""
        head = self.conn.trailing_data[0] + data
        return (
            len(head) > self.max_header_bytes and b"\r\n\r\n" not in head[: self.max_header_bytes]
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.our_state is h11.DONE and not self.transport.is_closing():
            self._arm()  # answered before the client sent all its body: the rest has a deadline
        else:
            self._disarm()  # idle until the next request: uvicorn's keep-alive timeout governs

    def send_400_response(self, msg: str) -> None:
        message = "the request is not valid HTTP/1.1 (its request line, headers or framing)"
        self._reject(raw_error(400, "Bad Request", "bad_request", message))

    def _reject(self, response: bytes) -> None:
        """Answer, then close gently: closing with unread input would send a TCP reset, which
        can destroy the answer before the client reads it; so say we are done, drop what else
        comes, and close for good after :data:`LINGER_S`."""
        self.rejected = True
        self._disarm()
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _arm(self) -> None:
        self._disarm()
        self.header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _too_slow(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        if self.conn.our_state is h11.IDLE and self.conn.trailing_data[0]:
            message = f"the request's headers did not arrive within {self.header_timeout:g} s"
            self._reject(raw_error(408, "Request Timeout", "request_timeout", message))
        else:
            self.transport.close()  # an idle connection just closes, as after keep-alive


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's keyword arguments for these settings: the limits, timeouts and proxies."""
    return {
        "http": GuardedH11Protocol,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        # uvicorn's own cap (a plain-text 503) counts requests too, and only past ours.
        "limit_concurrency": settings.max_connections + 1,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
