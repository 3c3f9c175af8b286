"""Login and logout. Passwords are checked with argon2. Failed logins slow down the name typed and the client
address with growing delays (casemgr.ratelimit backoffs, in the database), never a hard lock: the owner of an
attacked account gets in after at most USER_POLICY.cap_s. Known and unknown names get the same status, body
and work (a dummy hash is verified for unknown names). Every attempt, refusal and logout is written to the
security log (casemgr.security) in the same transaction as the change it causes."""

from __future__ import annotations

import math
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import col

from casemgr.db import write_session
from casemgr.ratelimit import service as ratelimit
from casemgr.ratelimit.service import BackoffPolicy
from casemgr.security import service as security
from casemgr.security.enums import SecurityEventKind as Kind
from casemgr.security.middleware import mark_logged
from casemgr.users import service as users
from casemgr.users.models import User, WebSession
from casemgr.web import csrf, sessions
from casemgr.web.clientaddr import client_address
from casemgr.web.deps import optional_principal, page, token_hash
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["auth"], include_in_schema=False)

# Per name typed (known or not): 5 free failures, then 2 s, 4 s, ... at most 60 s between attempts.
USER_POLICY = BackoffPolicy(free=5, base_s=2.0, cap_s=60.0, forget_s=900)
# Per client address, across all names: 20 free failures, then doubling up to 15 minutes.
IP_POLICY = BackoffPolicy(free=20, base_s=2.0, cap_s=900.0, forget_s=3600)
GENERIC_FAILURE = "Wrong username or password."
# Hashes to verify against for unknown users, so "no such user" costs as much as "wrong password": one per
# hasher cost setting, made with the hasher real passwords are hashed with.
_DUMMY_HASHES: dict[tuple[int, int, int], str] = {}


def _dummy_hash() -> str:
    h = users._hasher
    params = (h.time_cost, h.memory_cost, h.parallelism)
    if params not in _DUMMY_HASHES:
        _DUMMY_HASHES[params] = users.hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASHES[params]


_dummy_hash()  # made at start-up, so the first unknown name is not slower than the rest


def _user_key(name: str) -> str:
    return f"login-user:{name.strip().lower()[:100]}"


def _ip_key(ip: str) -> str:
    return f"login-ip:{ip}"


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
    # No session yet: the form carries a pre-session token that CSRFMiddleware checks (casemgr.web.csrf). The
    # token of the browser's valid cookie is reused, so answers differ by nothing but what the user typed.
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
    # CSRFMiddleware has already checked the form's token (login CSRF) and logged a refusal.
    next_url = _safe_next(next)
    ip = client_address(request)
    mark_logged(request.state)  # every outcome below is recorded here, with its precise kind
    name = username.strip()
    ukey, ikey = _user_key(name), _ip_key(ip)

    def again(error: str, status_code: int) -> HTMLResponse:
        return _login_form(request, error=error, next_url=next_url, username=username, status_code=status_code)

    with write_session() as s:
        wait = max(ratelimit.backoff_wait(ukey, session=s), ratelimit.backoff_wait(ikey, session=s))
        if wait > 0:
            # Refused without looking at the password or the user table: the same answer for every name.
            security.record(s, Kind.LOGIN_THROTTLED, client=ip, username=name, path="/login",
                            detail=f"wait {math.ceil(wait)} s")
            return again(f"Too many failed logins. Please wait {math.ceil(wait)} seconds and try again.", 429)
        user = users.get_user_by_name(s, name)
        real = user is not None and user.active and bool(user.password_hash)
        hash_ = user.password_hash if real and user is not None else _dummy_hash()
        if not (users.check_password(hash_, password) and real):
            delay = max(ratelimit.backoff_fail(ukey, USER_POLICY, session=s),
                        ratelimit.backoff_fail(ikey, IP_POLICY, session=s))
            security.record(s, Kind.LOGIN_FAILED, client=ip, username=name, path="/login")
            if delay:
                security.record(s, Kind.THROTTLE_IMPOSED, client=ip, username=name, path="/login",
                                detail=f"next attempt in {math.ceil(delay)} s")
            return again(GENERIC_FAILURE, 401)
        assert user is not None
        # The name's failures are forgotten; the address's are not (a guesser could otherwise reset its own
        # delay by logging in to an account of its own between guesses).
        ratelimit.backoff_reset(ukey, session=s)
        security.record(s, Kind.LOGIN_SUCCEEDED, client=ip, username=user.username, path="/login",
                        actor=f"user:{user.username}")
        old = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE))
        token, _ = sessions.create(s, int(user.id or 0), token_hash(old) if old else None)
    resp: Response = RedirectResponse(next_url, status_code=303)
    resp.set_cookie(sessions.SESSION_COOKIE, sessions.sign(token),
                    max_age=60 * _ttl_minutes(), **sessions.cookie_kwargs(request))  # type: ignore[arg-type]
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    # CSRFMiddleware has already checked the token: a third-party page cannot log people out.
    token = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE))
    if token:
        with write_session() as s:
            ws = s.execute(select(WebSession).where(col(WebSession.token_hash) == token_hash(token))).scalar_one_or_none()
            if ws is not None:
                user = s.get(User, ws.user_id)
                name = user.username if user else f"#{ws.user_id}"
                security.record(s, Kind.LOGOUT, client=client_address(request), username=name, path="/logout",
                                actor=f"user:{name}")
            sessions.destroy(s, token_hash(token))
    resp = redirect("/login")
    resp.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return resp


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, who: Annotated[users.Principal, Depends(page("account.password"))]) -> Response:
    return render(request, "account_password.html", {})


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request, who: Annotated[users.Principal, Depends(page("account.password"))],
    current: Annotated[str, Form(max_length=1000)], new: Annotated[str, Form(max_length=1000)],
) -> Response:
    """One's own new password (the same rules as at creation); every session of the user ends, this one too."""
    from casemgr.errors import DomainError

    ip = client_address(request)
    mark_logged(request.state)
    with write_session() as s:
        user = s.get(User, who.user_id) if who.user_id is not None else None
        if user is None or who.via != "session":
            return render(request, "account_password.html", {"error": "Log in with a password to change it."},
                          status_code=403)
        key = _user_key(user.username)
        if ratelimit.backoff_wait(key, session=s) > 0 or not users.check_password(user.password_hash, current):
            ratelimit.backoff_fail(key, USER_POLICY, session=s)
            security.record(s, Kind.LOGIN_FAILED, client=ip, username=user.username, path="/account/password",
                            actor=who.actor)
            return render(request, "account_password.html", {"error": "The current password is not right."},
                          status_code=403)
    try:
        with write_session() as s:
            users.set_password(s, int(who.user_id or 0), new, actor=who.actor)
    except DomainError as exc:
        return render(request, "account_password.html", {"error": exc.message}, status_code=exc.status_code)
    resp = redirect("/login")
    resp.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return resp


@router.get("/")
def root() -> Response:
    return redirect("/queue")


def _ttl_minutes() -> int:
    from casemgr.config import get_settings

    return get_settings().session_ttl_minutes
