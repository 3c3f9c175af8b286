"""Two ASGI middlewares: security headers on every response, and CSRF checks on every state-changing request.

CSRF rule: a POST/PUT/PATCH/DELETE needs the session's CSRF token (form field `csrf_token` or header
`X-CSRF-Token`, which static/app.js adds to htmx requests), or gets 403. Exempt:
- calls authenticated by an API key header: browsers cannot add that header cross-site, and the principal
  comes from the key, not from a cookie;
- /api calls that carry no session cookie at all: nothing ambient to abuse, so they reach the route and get 401;
- paths in CSRF_EXEMPT_PREFIXES, which do their own check (the login form uses a double-submit cookie, the
  public complaint form has its own token).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request

from casemgr.web.sessions import SESSION_COOKIE, tokens_equal, unsign

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Paths that check CSRF themselves (see module doc). Rooms with their own scheme add a prefix here.
CSRF_EXEMPT_PREFIXES: list[str] = ["/login", "/submit", "/public"]
# Form bodies bigger than this are not parsed for a token (send the header instead); the route still sees them.
MAX_FORM_SCAN = 40 * 1024 * 1024


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _forbidden(send: Send, detail: str, html: bool = False) -> None:
    if html:
        # A person submitting a form gets a page with a way forward, not a JSON blob.
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Request refused · casemgr</title>'
            '<link rel="stylesheet" href="/static/app.css"></head><body><main id="main"><h1>Request refused</h1>'
            f'<p class="error" role="alert" data-error="csrf_failed">{escape(detail)}</p>'
            '<p>Go back and reload the page, or <a href="/login">log in again</a>.</p></main></body></html>'
        ).encode()
        ctype = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": "csrf_failed", "detail": detail}).encode()
        ctype = b"application/json"
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _session_csrf(cookie_value: str | None) -> str | None:
    """The CSRF token of the live session named by the cookie, if any."""
    token = unsign(cookie_value)
    if not token:
        return None
    from sqlalchemy import select

    from casemgr.clock import now
    from casemgr.db import read_session
    from casemgr.users.models import WebSession
    from casemgr.web.deps import token_hash

    with read_session() as s:
        ws = s.execute(select(WebSession).where(WebSession.token_hash == token_hash(token))).scalar_one_or_none()
        if ws is None or ws.expires_at <= now():
            return None
        return ws.csrf_token


class CSRFMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if any(path == p or path.startswith(p + "/") for p in CSRF_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if headers.get("x-api-key") or headers.get("authorization", "").lower().startswith("bearer "):
            await self.app(scope, receive, send)
            return
        cookie_value = Request(scope).cookies.get(SESSION_COOKIE)
        if path.startswith("/api") and not cookie_value:
            await self.app(scope, receive, send)
            return
        html = "text/html" in headers.get("accept", "") and headers.get("hx-request") != "true"
        expected = _session_csrf(cookie_value)
        if expected is None and path == "/logout":
            await self.app(scope, receive, send)  # an expired session may always "log out"
            return
        if expected is None:
            await _forbidden(send, "no valid session for this request; reload the page and log in again", html)
            return
        sent = headers.get("x-csrf-token")
        replay: Receive = receive
        if not sent:
            ctype = headers.get("content-type", "")
            if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                body, more = await _read_body(receive, MAX_FORM_SCAN)
                replay = _replayer(body, more, receive)
                if not more:
                    form = await Request(scope, _replayer(body, False, receive)).form()
                    value = form.get("csrf_token")
                    sent = value if isinstance(value, str) else None
        if not tokens_equal(sent, expected):
            await _forbidden(send, "missing or invalid CSRF token; reload the page and try again", html)
            return
        await self.app(scope, replay, send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """Read up to `limit` bytes; returns (body, more_pending)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > limit:
            return b"".join(chunks), True
    return b"".join(chunks), False


def _replayer(body: bytes, more: bool, original: Receive) -> Receive:
    """Hand the buffered body on first, then whatever the client still sends (or its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await original()

    return receive
