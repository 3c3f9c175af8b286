"""The one CSRF mechanism: CSRFMiddleware checks every state-changing request against one expected token.

- Pages of a live session: the session's own token (a synchronizer token kept in its `web_sessions` row,
  given to pages as `csrf_token` and to htmx requests by static/app.js as the `X-CSRF-Token` header).
- Forms shown without a session (the login form, the public complaint form): a random token issued with the
  form, whose copy rides in the `casemgr_csrf` cookie signed with the secret key (another site can neither read
  nor plant it) and valid for FORM_TOKEN_MAX_AGE_S. `form_token(request)` gives it to the page and
  `set_form_cookie(response, request)` stores it. (A browser may carry both, e.g. a login form posted by a
  browser that still holds an older session: either token is accepted, as neither can be known cross-site.)

The request carries the token as the form field `csrf_token` or the `X-CSRF-Token` header; otherwise 403.
No route checks CSRF itself. Exempt, because nothing ambient can be abused:
- calls authenticated by an API key header (browsers cannot add that header cross-site; the principal comes
  from the key, not from a cookie);
- /api calls that carry no session cookie at all (they reach the route and get 401);
- POST /logout with no live session (an expired session may always "log out").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from html import escape
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from casemgr.config import get_settings
from casemgr.web.sessions import SESSION_COOKIE, is_https, tokens_equal, unsign

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FORM_COOKIE = "casemgr_csrf"
FORM_TOKEN_MAX_AGE_S = 4 * 3600
FIELD = "csrf_token"
HEADER = "x-csrf-token"
# Form bodies bigger than this are not parsed for a token (send the header instead); the route still sees them.
MAX_FORM_SCAN = 40 * 1024 * 1024


# ---------------------------------------------------------------- tokens for pages without a session


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key_value(), salt="casemgr-form-csrf")


def _cookie_token(cookie_value: str | None) -> str | None:
    if not cookie_value:
        return None
    try:
        token = _serializer().loads(cookie_value, max_age=FORM_TOKEN_MAX_AGE_S)
    except BadSignature:  # also SignatureExpired
        return None
    return token if isinstance(token, str) and token else None


def form_token(request: Request) -> str:
    """The token for a form shown without a session: the one in the request's valid cookie (so several open
    tabs keep working), else a new one. Call set_form_cookie() on the response that shows it."""
    token = getattr(request.state, "csrf_form_token", None) or _cookie_token(request.cookies.get(FORM_COOKIE))
    token = token or secrets.token_urlsafe(32)
    request.state.csrf_form_token = token
    return token


def set_form_cookie(response: Response, request: Request) -> None:
    response.set_cookie(FORM_COOKIE, _serializer().dumps(form_token(request)), max_age=FORM_TOKEN_MAX_AGE_S,
                        httponly=True, samesite="strict", secure=is_https(request), path="/")


# ---------------------------------------------------------------- the check


def _session_csrf(cookie_value: str | None) -> str | None:
    """The CSRF token of the live session named by the cookie, if any."""
    token = unsign(cookie_value)
    if not token:
        return None
    from sqlalchemy import select
    from sqlmodel import col

    from casemgr.clock import now
    from casemgr.db import read_session
    from casemgr.users.models import WebSession
    from casemgr.web.deps import token_hash

    with read_session() as s:
        ws = s.execute(select(WebSession).where(col(WebSession.token_hash) == token_hash(token))).scalar_one_or_none()
        from casemgr.web.sessions import is_live

        if ws is None or not is_live(ws, now()):  # idle and absolute limits (issue 18)
            return None
        return ws.csrf_token


async def _forbidden(send: Send, detail: str, html: bool = False, scope: Scope | None = None) -> None:
    if scope is not None:  # the security log, with the real client address (issue 18)
        from casemgr.security.enums import SecurityEventKind
        from casemgr.security.middleware import mark_logged
        from casemgr.security.service import record_async

        mark_logged(scope)
        client = scope.get("client")
        await record_async(SecurityEventKind.CSRF_REFUSED, client=client[0] if client else "unknown",
                           path=f"{scope.get('method', '')} {scope.get('path', '')}", detail=detail[:100])
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


class CSRFMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        if headers.get("x-api-key") or headers.get("authorization", "").lower().startswith("bearer "):
            await self.app(scope, receive, send)
            return
        cookies = Request(scope).cookies
        session_cookie = cookies.get(SESSION_COOKIE)
        if path.startswith("/api") and not session_cookie:
            await self.app(scope, receive, send)
            return
        html = "text/html" in headers.get("accept", "") and headers.get("hx-request") != "true"
        session_token = _session_csrf(session_cookie) if session_cookie else None
        if session_token is None and path == "/logout":
            await self.app(scope, receive, send)  # an expired session may always "log out"
            return
        expected = [t for t in (session_token, _cookie_token(cookies.get(FORM_COOKIE))) if t]
        if not expected:
            detail = ("no valid session for this request; reload the page and log in again" if session_cookie else
                      "this form expired or was opened in another window; reload the page and send it again")
            await _forbidden(send, detail, html, scope)
            return
        sent = headers.get(HEADER)
        replay: Receive = receive
        if not sent:
            ctype = headers.get("content-type", "")
            if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                body, more = await _read_body(receive, MAX_FORM_SCAN)
                replay = _replayer(body, more, receive)
                if not more:
                    form = await Request(scope, _replayer(body, False, receive)).form()
                    value = form.get(FIELD)
                    sent = value if isinstance(value, str) else None
        if not any(tokens_equal(sent, token) for token in expected):
            await _forbidden(send, "missing or invalid CSRF token: this form expired or was opened in another "
                                   "window; reload the page and try again", html, scope)
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
