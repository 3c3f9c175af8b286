"""Request dependencies: who is calling (session cookie or API key) and whether their roles allow the route."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlmodel import Session

from casemgr.clock import now
from casemgr.config import Settings
from casemgr.db import get_read_session, get_write_session, read_session
from casemgr.errors import PermissionDenied, Unauthenticated
from casemgr.runtime import Runtime
from casemgr.users import service as users
from casemgr.users.models import User, WebSession
from casemgr.web.access import roles_for

SESSION_COOKIE = "casemgr_session"

# scope="function": the session closes (and a write commits) before the response goes out, so a 2xx is
# never sent for a change that then fails to commit.
ReadSession = Annotated[Session, Depends(get_read_session, scope="function")]
WriteSession = Annotated[Session, Depends(get_write_session, scope="function")]


def app_runtime(request: Request) -> Runtime:
    """The application context that create_app built (casemgr.runtime), kept on app.state."""
    return request.app.state.runtime  # type: ignore[no-any-return]


def app_settings(request: Request) -> Settings:
    return app_runtime(request).settings


AppRuntime = Annotated[Runtime, Depends(app_runtime)]
AppSettings = Annotated[Settings, Depends(app_settings)]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _api_key_from(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def resolve_principal(request: Request, session: Session) -> users.Principal | None:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = None
    key = _api_key_from(request)
    if key:
        principal = users.principal_for_api_key(session, key)
        if principal is None:
            raise Unauthenticated("invalid or revoked API key")
        users.remember_api_key(key, principal)
    else:
        from casemgr.web import sessions

        token = sessions.unsign(request.cookies.get(SESSION_COOKIE))
        if token:
            ws = session.execute(select(WebSession).where(WebSession.token_hash == token_hash(token))).scalar_one_or_none()
            if ws is not None and sessions.is_live(ws, now()):
                user = session.get(User, ws.user_id)
                if user is not None and user.active:
                    principal = users.principal_for_user(session, user, via="session")
                    request.state.web_session = ws
    request.state.principal = principal
    return principal


def _principal(request: Request) -> users.Principal | None:
    # A short session of its own: the connection goes back to the pool before the route's own session takes
    # one, so a request never holds two pooled connections (that deadlocks the pool under load).
    if hasattr(request.state, "principal"):
        return request.state.principal
    with read_session() as session:
        principal = resolve_principal(request, session)
    ws = getattr(request.state, "web_session", None)
    if ws is not None:
        from casemgr.web.sessions import touch

        touch(ws)  # after the read session is back in the pool (idle timeout slides; at most one write a minute)
    return principal


# API keys being looked up on this process's event loop(s): (loop, key) -> done when that lookup ended.
_key_lookups: dict[tuple[int, str], asyncio.Future[None]] = {}


async def _principal_async(request: Request) -> users.Principal | None:
    # A call with a recently verified API key needs neither a worker thread nor a query; anything else is
    # looked up on the thread pool (the database calls block).
    if hasattr(request.state, "principal"):
        return request.state.principal
    key = _api_key_from(request)
    principal = users.remembered_api_key(key) if key else None
    if principal is None and key:
        principal = await _after_lookup_in_flight(key)
    if principal is None:
        return await _looked_up(request, key)
    request.state.principal = principal
    return principal


async def _after_lookup_in_flight(key: str) -> users.Principal | None:
    """If a lookup of `key` is under way on this loop, wait for it and return what it remembered, else None.

    When a remembered key expired under load, every request in flight with it (32 in the intake bench) missed at
    once and looked it up on the thread pool, and the first of them entered its route 72 ms late (issue 23). A key
    that lookup did not verify (unknown, revoked) is then looked up by each request as before, so each refusal is
    handled and logged on its own."""
    pending = _key_lookups.get((id(asyncio.get_running_loop()), key))
    if pending is None:
        return None
    await asyncio.shield(pending)
    return users.remembered_api_key(key)


async def _looked_up(request: Request, key: str | None) -> users.Principal | None:
    """The caller looked up on the thread pool; with an API key, announced to _after_lookup_in_flight meanwhile."""
    if not key:
        return await run_in_threadpool(_principal, request)
    loop = asyncio.get_running_loop()
    slot = (id(loop), key)
    mine = slot not in _key_lookups  # a refused key's requests run their own lookups beside the announced one
    if mine:
        _key_lookups[slot] = loop.create_future()
    try:
        return await run_in_threadpool(_principal, request)
    finally:
        if mine:
            _key_lookups.pop(slot).set_result(None)


async def current_principal(request: Request) -> users.Principal:
    principal = await _principal_async(request)
    if principal is None:
        raise Unauthenticated("login or an API key is required")
    return principal


def optional_principal(request: Request) -> users.Principal | None:
    return _principal(request)


def require(permission: str) -> Callable[..., users.Principal]:
    """API/route dependency: 401 for anonymous callers (HTML requests are redirected), 403 for wrong roles."""
    allowed = roles_for(permission)

    async def dependency(principal: Annotated[users.Principal, Depends(current_principal)]) -> users.Principal:
        if not principal.has_any(allowed):
            raise PermissionDenied(f"this needs one of the roles: {', '.join(sorted(allowed))}")
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


async def page_principal(request: Request) -> users.Principal:
    principal = await _principal_async(request)
    if principal is None:
        # Pages always send anonymous visitors to the login form, whatever their Accept header says.
        raise Unauthenticated("please log in", login_redirect=True)
    return principal


def page(permission: str) -> Callable[..., users.Principal]:
    """Page dependency: anonymous -> redirect to /login, wrong roles -> 403 page."""
    allowed = roles_for(permission)

    async def dependency(principal: Annotated[users.Principal, Depends(page_principal)]) -> users.Principal:
        if not principal.has_any(allowed):
            raise PermissionDenied(f"this page needs one of the roles: {', '.join(sorted(allowed))}")
        return principal

    dependency.__name__ = f"page_{permission.replace('.', '_')}"
    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def csrf_token_of(request: Request) -> str | None:
    ws = getattr(request.state, "web_session", None)
    return ws.csrf_token if ws is not None else None
