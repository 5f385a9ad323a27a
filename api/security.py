"""Safe defaults for a service that web pages talk to: Host checks, hardening headers, HEAD."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response

# JSON, scripts and anything else not given its own policy: load nothing, be framed by no one.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The demo page: its script and the widget from here, the widget's shadow-root <style>.
DEMO_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def docs_csp(html: str) -> str:
    """The policy of the Swagger UI page: its assets from here, its one inline script by hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def host_of(header: str) -> str:
    """The host name of a Host header, without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else ""
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether ``host`` is one of ``allowed`` (``*`` any, ``*.example.org`` its subdomains)."""
    for pattern in allowed:
        pattern = pattern.strip().lower().strip("[]")
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class HostCheck:
    """ASGI middleware: 400 unless the Host header names this server (stops DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed: list[str]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = host_of(Headers(scope=scope).get("host", ""))
            if not host_allowed(host, self.allowed):
                message = (
                    "the Host header does not name this server; "
                    "its operator can allow it with VERBATIM_ALLOWED_HOSTS"
                )
                await error_response(400, "invalid_host", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: ``nosniff`` and a no-referrer policy everywhere, and a deny-all CSP on
    every response that does not bring its own (pages set theirs)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """ASGI middleware: ``HEAD`` answered as ``GET`` with its headers and without its body."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def check_bearer(
    authorization: str | None, token: str, name: str = "metrics token", realm: str = "metrics"
) -> None:
    """Raise a 401 unless ``authorization`` is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(
            401,
            "unauthorized",
            f"this endpoint needs the header Authorization: Bearer <{name}>",
            {"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )


def is_document_write(method: str, path: str) -> bool:
    """Whether a request would change the documents (POST, PUT or DELETE on /documents...)."""
    # .../view is only ever the GET page: routing answers other methods there with a 405.
    return method in ("POST", "PUT", "PATCH", "DELETE") and (
        path == "/documents" or (path.startswith("/documents/") and not path.endswith("/view"))
    )


def check_admin(authorization: str | None, query: str, token: SecretStr | None) -> None:
    """Raise a 403 when writes are off, a 401 unless the request carries the admin token in its
    Authorization header (never in the URL, which logs and browser histories keep)."""
    if token is None:
        raise ApiError(
            403,
            "writes_disabled",
            "writes are disabled on this server: its operator can enable them by setting "
            "VERBATIM_ADMIN_TOKEN (16+ characters) and restarting it",
        )
    if {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)} & {"token", "access_token"}:
        raise ApiError(
            401,
            "unauthorized",
            "a token in the URL is never accepted: send it in the header "
            "Authorization: Bearer <admin token>",
            {"WWW-Authenticate": 'Bearer realm="verbatim-admin"'},
        )
    check_bearer(authorization, token.get_secret_value(), "admin token", "verbatim-admin")


class AdminGuard:
    """ASGI middleware: document writes need the admin token, checked before their body (up to
    the upload limit) is read at all."""

    def __init__(self, app: ASGIApp, token: SecretStr | None):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_document_write(scope["method"], scope["path"]):
            try:
                check_admin(
                    Headers(scope=scope).get("authorization"),
                    scope["query_string"].decode("latin-1"),
                    self.token,
                )
            except ApiError as exc:
                # The unread body may still come: the connection cannot carry another request.
                headers = {**(exc.headers or {}), "Connection": "close"}
                await error_response(exc.status, exc.code, exc.message, headers)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)


_bearer = HTTPBearer(auto_error=False, description="The admin token (VERBATIM_ADMIN_TOKEN).")


async def require_admin(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """The admin token, as a dependency: documents the scheme in OpenAPI, and checks again in
    case a route is mounted without :class:`AdminGuard`."""
    settings = request.app.state.service.settings
    check_admin(request.headers.get("authorization"), request.url.query, settings.admin_token)


AdminDep = Depends(require_admin)
