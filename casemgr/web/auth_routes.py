"""Login and logout. Passwords are checked with argon2; repeated failures lock the account for a while and
rate-limit the client address, so online guessing is slow."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from casemgr.clock import now
from casemgr.db import write_session
from casemgr.ratelimit import service as ratelimit
from casemgr.users import service as users
from casemgr.web import csrf, sessions
from casemgr.web.deps import optional_principal, token_hash
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["auth"], include_in_schema=False)

MAX_FAILED = 5  # failed logins in a row before the account locks
LOCK_MINUTES = 15
IP_WINDOW_S = 600
IP_MAX_FAILURES = 30  # per client address in the window, across all usernames, counted across app processes
# A hash to verify against for unknown users, so "no such user" takes as long as "wrong password".
_DUMMY_HASH = users.hash_password(secrets.token_urlsafe(16))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _ip_key(ip: str) -> str:
    return f"login-fail:{ip}"


def _safe_next(value: str | None) -> str:
    # Only local paths: an open redirect would let a phishing link bounce through our login page.
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queue"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/queue"
    return value


def _login_form(request: Request, *, error: str | None = None, next_url: str = "/queue", username: str = "",
                status_code: int = 200) -> HTMLResponse:
    # No session yet: the form carries a pre-session token that CSRFMiddleware checks (casemgr.web.csrf).
    resp = render(request, "login.html", {"error": error, "next": next_url, "username": username,
                                          "login_csrf": csrf.form_token(request)}, status_code=status_code)
    csrf.set_form_cookie(resp, request)
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    if optional_principal(request) is not None:
        return redirect(_safe_next(next))
    return _login_form(request, next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/queue",  # noqa: A002
) -> Response:
    # CSRFMiddleware has already checked the form's token (login CSRF).
    next_url = _safe_next(next)
    ip = _client(request)
    generic = "Wrong username or password."
    with write_session() as s:
        if ratelimit.exceeded(_ip_key(ip), IP_MAX_FAILURES, IP_WINDOW_S, session=s):
            return _login_form(request, error="Too many failed logins from your address. Wait a few minutes.",
                               next_url=next_url, username=username, status_code=429)
        user = users.get_user_by_name(s, username.strip())
        at = now()
        if user is None or not user.active:
            users.check_password(_DUMMY_HASH, password)
            ratelimit.hit(_ip_key(ip), IP_WINDOW_S, session=s)
            return _login_form(request, error=generic, next_url=next_url, username=username, status_code=401)
        if user.locked_until is not None and _aware(user.locked_until) > at:
            ratelimit.hit(_ip_key(ip), IP_WINDOW_S, session=s)
            return _login_form(request, error="This account is locked after repeated failed logins. "
                               f"Try again after {user.locked_until:%H:%M} UTC or ask an admin.",
                               next_url=next_url, username=username, status_code=429)
        if not users.check_password(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED:
                user.locked_until = at + timedelta(minutes=LOCK_MINUTES)
                user.failed_logins = 0
            s.add(user)
            ratelimit.hit(_ip_key(ip), IP_WINDOW_S, session=s)
            from casemgr.audit import service as audit

            audit.record(s, actor=f"anonymous:{ip}", action="auth.login_failed", entity=f"user:{user.id}",
                         after={"locked": user.locked_until is not None and _aware(user.locked_until) > at})
            return _login_form(request, error=generic, next_url=next_url, username=username, status_code=401)
        user.failed_logins = 0
        user.locked_until = None
        s.add(user)
        old = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE))
        token, _ = sessions.create(s, int(user.id or 0), token_hash(old) if old else None)
    resp: Response = RedirectResponse(next_url, status_code=303)
    resp.set_cookie(sessions.SESSION_COOKIE, sessions.sign(token),
                    max_age=60 * _ttl_minutes(), **sessions.cookie_kwargs())  # type: ignore[arg-type]
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    # CSRFMiddleware has already checked the token: a third-party page cannot log people out.
    token = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE))
    if token:
        with write_session() as s:
            sessions.destroy(s, token_hash(token))
    resp = redirect("/login")
    resp.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return resp


@router.get("/")
def root() -> Response:
    return redirect("/queue")


def _ttl_minutes() -> int:
    from casemgr.config import get_settings

    return get_settings().session_ttl_minutes


def _aware(dt):  # type: ignore[no-untyped-def]
    # SQLite hands back naive datetimes; everything we store is UTC.
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
