"""Server-side web sessions: the cookie carries a signed random token; the row holds user, expiry and CSRF token.

Only the sha256 of the token is stored, so a database dump does not hand out live sessions. The cookie is
signed with the secret key (itsdangerous) so a forged or truncated cookie is refused before any lookup.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

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
        expires_at=at + timedelta(minutes=get_settings().session_ttl_minutes),
    )
    session.add(ws)
    session.flush()
    return token, ws


def destroy(session: Session, token_hash_value: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash_value))


def cookie_kwargs() -> dict[str, object]:
    s = get_settings()
    return {"httponly": True, "samesite": "lax", "secure": bool(s.cookie_secure), "path": "/"}
