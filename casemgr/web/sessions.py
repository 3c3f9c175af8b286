"""Server-side web sessions: the cookie carries a signed random token; the row holds user, expiry and CSRF token.

A session ends session_idle_minutes after its last request (expires_at slides forward, at most once a minute so
reading a page does not write every time) and session_ttl_minutes after login whatever happens (created_at).

Only the sha256 of the token is stored, so a database dump does not hand out live sessions. The cookie is
signed with the secret key (itsdangerous) so a forged or truncated cookie is refused before any lookup.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, Signer
from sqlalchemy import delete
from sqlmodel import Session

from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.users.models import WebSession

SESSION_COOKIE = "casemgr_session"


def _signer(salt: str = "casemgr-session") -> Signer:
    return Signer(get_settings().secret_key_value(), salt=salt)


def sign(token: str, salt: str = "casemgr-session") -> str:
    return _signer(salt).sign(token.encode()).decode()


def unsign(value: str | None, salt: str = "casemgr-session") -> str | None:
    """The token inside a signed cookie value, or None if it is missing or tampered with."""
    if not value:
        return None
    try:
        return _signer(salt).unsign(value.encode()).decode()
    except (BadSignature, UnicodeError, ValueError):
        return None


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def create(session: Session, user_id: int, old_token_hash: str | None = None) -> tuple[str, WebSession]:
    """A fresh session (rotated at login: the caller's previous session row, if any, is deleted)."""
    from casemgr.web.deps import token_hash

    at = now()
    if old_token_hash:
        session.execute(delete(WebSession).where(WebSession.token_hash == old_token_hash))
    # Expired sessions of this user are garbage; drop them while we are here.
    session.execute(delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at <= at))
    token = secrets.token_urlsafe(32)
    ws = WebSession(
        token_hash=token_hash(token), user_id=user_id, csrf_token=secrets.token_urlsafe(32), created_at=at,
        expires_at=at + _idle_span(),
    )
    session.add(ws)
    session.flush()
    return token, ws


def destroy(session: Session, token_hash_value: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash_value))


def _idle_span() -> timedelta:
    s = get_settings()
    return timedelta(minutes=min(s.session_idle_minutes, s.session_ttl_minutes))


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)  # SQLite hands back naive UTC datetimes


def is_live(ws: WebSession, at: datetime | None = None) -> bool:
    """Neither idle too long nor older than the absolute lifetime."""
    at = at or now()
    absolute = _aware(ws.created_at) + timedelta(minutes=get_settings().session_ttl_minutes)
    return _aware(ws.expires_at) > at and absolute > at


def touch(ws: WebSession, at: datetime | None = None) -> None:
    """Slide the idle expiry forward (never past the absolute end); writes at most once a minute per session."""
    at = at or now()
    absolute = _aware(ws.created_at) + timedelta(minutes=get_settings().session_ttl_minutes)
    target = min(at + _idle_span(), absolute)
    if target - _aware(ws.expires_at) < timedelta(seconds=60):
        return
    from sqlalchemy import update
    from sqlmodel import col

    from casemgr.db import write_session

    with write_session() as s:
        s.execute(update(WebSession).where(col(WebSession.id) == ws.id).values(expires_at=target))
    ws.expires_at = target


def is_https(request: Any) -> bool:
    """Served over HTTPS: the request's scheme (a trusted proxy's X-Forwarded-Proto counts) or the setting."""
    return bool(get_settings().cookie_secure) or getattr(getattr(request, "url", None), "scheme", "") == "https"


def cookie_kwargs(request: Any = None) -> dict[str, object]:
    return {"httponly": True, "samesite": "lax", "secure": is_https(request), "path": "/"}
