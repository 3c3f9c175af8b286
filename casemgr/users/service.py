"""Users, roles, API keys and password checks (argon2)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, event, select
from sqlmodel import Session, col

from casemgr.audit import service as audit
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from casemgr.users.models import ApiKey, User, UserRole, WebSession
from casemgr.users.passwords import check_new_password

_hasher = PasswordHasher()

CAPABILITY_SCOPES = frozenset({"intake"})
USER_ROLES = ("agent", "lead", "governance", "reviewer", "admin", "legal", "finance", "compliance")


@dataclass
class Principal:
    """Who is acting: a logged-in user or an API key (scoped)."""

    user_id: int | None
    username: str
    roles: frozenset[str]
    via: str = "session"  # session | apikey | cli | system
    key_name: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        if self.via == "apikey":
            return f"apikey:{self.key_name}"
        if self.via in ("system", "cli") and self.user_id is None:
            return self.username
        return f"user:{self.username}"

    def has_any(self, roles: set[str] | frozenset[str]) -> bool:
        return bool(self.roles & roles)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(hash_: str | None, password: str) -> bool:
    if not hash_:
        return False
    try:
        return _hasher.verify(hash_, password)
    except (VerificationError, InvalidHashError):
        return False


def _validate_roles(roles: list[str]) -> list[str]:
    known = get_registry().org.role_names
    bad = [r for r in roles if r not in known]
    if bad:
        raise ValidationFailed(f"unknown role(s): {', '.join(bad)}; known: {', '.join(sorted(known))}", field="roles")
    return sorted(set(roles))


def create_user(
    session: Session, username: str, password: str, roles: list[str], actor: str = "system",
    display_name: str | None = None, email: str | None = None,
) -> User:
    if not username or len(username) > 100:
        raise ValidationFailed("username must be 1-100 characters", field="username")
    check_new_password(password, username)
    roles = _validate_roles(roles)
    if session.execute(select(User).where(User.username == username)).scalar_one_or_none():
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), display_name=display_name, email=email)
    session.add(user)
    session.flush()
    for r in roles:
        session.add(UserRole(user_id=user.id, role=r))
    session.flush()
    audit.record(session, actor=actor, action="user.created", entity=f"user:{user.id}",
                 after={"username": username, "roles": roles})
    return user


OWN_ROLES_CHANGED = "user.own_roles_changed"  # flagged: shown on the governance pages


def _other_active_admins(session: Session, user_id: int) -> int:
    return len(session.execute(
        select(col(UserRole.user_id)).join(User, col(User.id) == col(UserRole.user_id))
        .where(col(UserRole.role) == "admin", col(UserRole.user_id) != user_id, col(User.active).is_(True))
    ).all())


def set_roles(session: Session, user_id: int, roles: list[str], actor: str,
              acting_user_id: int | None = None) -> list[str]:
    """Replace a user's roles. An admin's own roles are changed by another admin (two-person rule); only when
    no other active admin exists may they change their own, and that leaves a flagged audit event that the
    governance pages show (an admin granting themselves `governance` could otherwise publish policy alone)."""
    roles = _validate_roles(roles)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    before = roles_of(session, user_id)
    own = acting_user_id is not None and acting_user_id == user_id and sorted(before) != roles
    if own and _other_active_admins(session, user_id):
        raise PermissionDenied("your own roles must be changed by another admin")
    _forget_api_keys_at_commit(session)
    session.execute(delete(UserRole).where(UserRole.user_id == user_id))
    for r in roles:
        session.add(UserRole(user_id=user_id, role=r))
    session.flush()
    audit.record(session, actor=actor, action=OWN_ROLES_CHANGED if own else "user.roles_changed",
                 entity=f"user:{user_id}", before={"roles": before},
                 after={"roles": roles, **({"flagged": "an admin changed their own roles with no second admin"}
                                           if own else {})})
    return roles


def flagged_role_changes(session: Session, limit: int = 20) -> list[Any]:
    from casemgr.audit.models import AuditEvent

    return list(session.execute(select(AuditEvent).where(col(AuditEvent.action) == OWN_ROLES_CHANGED)
                                .order_by(col(AuditEvent.seq).desc()).limit(limit)).scalars())


def set_password(session: Session, user_id: int, password: str, actor: str) -> User:
    """A new password (the same rules as at creation); the user's other sessions end."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    check_new_password(password, user.username)
    user.password_hash = hash_password(password)
    session.add(user)
    session.execute(delete(WebSession).where(col(WebSession.user_id) == user_id))
    audit.record(session, actor=actor, action="user.password_changed", entity=f"user:{user_id}",
                 after={"username": user.username})
    return user


def roles_of(session: Session, user_id: int) -> list[str]:
    return sorted(session.execute(select(UserRole.role).where(UserRole.user_id == user_id)).scalars().all())


def get_user_by_name(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def principal_for_user(session: Session, user: User, via: str = "session") -> Principal:
    return Principal(user_id=user.id, username=user.username, roles=frozenset(roles_of(session, user.id or 0)), via=via)


def _key_hash(key: str) -> str:
    # API keys are long random secrets, so a fast hash is enough and keeps per-request checks cheap.
    return hashlib.sha256(key.encode()).hexdigest()


def _validate_scopes(scopes: list[str], user_id: int | None) -> None:
    known = set(get_registry().org.role_names) | CAPABILITY_SCOPES
    bad = sorted(set(scopes) - known)
    if bad:
        raise ValidationFailed(f"unknown scope(s): {', '.join(bad)}; known: {', '.join(sorted(known))}",
                               field="scopes")
    if user_id is None:
        roles = sorted(set(scopes) - CAPABILITY_SCOPES)
        if roles:
            # A role scope only narrows its owner's roles; without an owner it would grant roles no user holds.
            raise ValidationFailed(f"a key without an owner cannot act with roles ({', '.join(roles)}); give it "
                                   "an owner who holds them, or only capability scopes such as intake",
                                   field="scopes")
        if not scopes:
            raise ValidationFailed("a key without an owner needs a capability scope such as intake", field="scopes")


def create_api_key(
    session: Session, name: str, user_id: int | None, scopes: list[str] | None = None, actor: str = "system"
) -> tuple[ApiKey, str]:
    """Returns the key record and the plaintext key, shown once and never stored."""
    _validate_scopes(scopes or [], user_id)
    secret = "cm_" + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[:10], key_hash=_key_hash(secret), user_id=user_id, scopes=sorted(set(scopes or [])))
    session.add(key)
    session.flush()
    audit.record(session, actor=actor, action="apikey.created", entity=f"apikey:{key.id}",
                 after={"name": name, "user_id": user_id, "scopes": key.scopes})
    return key, secret


def revoke_api_key(session: Session, key_id: int, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    _forget_api_keys_at_commit(session)
    key.revoked_at = now()
    session.add(key)
    audit.record(session, actor=actor, action="apikey.revoked", entity=f"apikey:{key.id}", after={"name": key.name})
    return key


def principal_for_api_key(session: Session, secret: str) -> Principal | None:
    key = session.execute(select(ApiKey).where(ApiKey.key_hash == _key_hash(secret))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    roles: frozenset[str] = frozenset()
    username = key.name
    if key.user_id is not None:
        user = session.get(User, key.user_id)
        if user is None or not user.active:
            return None
        roles = frozenset(roles_of(session, user.id or 0))
        username = user.username
    # A key's scopes narrow what it may do: a key scoped to ["intake"] can submit intake but cannot act as its
    # owner's agent role. Role scopes count only if the owner holds that role; capability scopes (not roles,
    # such as "intake") are granted by the scope itself. An unscoped key acts with its owner's roles.
    scopes = frozenset(key.scopes or [])
    if not scopes:
        effective = roles
    else:
        # An owner-less key gets capability scopes only: naming a role as a scope never grants it (issue 18).
        effective = (roles & scopes) | (scopes & CAPABILITY_SCOPES)
    return Principal(user_id=key.user_id, username=username, roles=frozenset(effective), via="apikey",
                     key_name=key.name, scopes=scopes)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


# ---------------------------------------------------------------- verified API keys, briefly remembered

_verified: dict[str, tuple[float, Principal]] = {}
_verified_lock = threading.Lock()
_VERIFIED_MAX = 10_000


def remembered_api_key(secret: str) -> Principal | None:
    """The principal of an API key this process verified less than api_key_cache_seconds ago, else None.

    An integration sends hundreds of requests a second with one key; looking it up (key, owner, roles) each time
    cost more than the rest of an intake request (issue 10 profile). Only successful lookups are remembered.
    """
    hit = _verified.get(_key_hash(secret))
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def remember_api_key(secret: str, principal: Principal) -> None:
    ttl = get_settings().api_key_cache_seconds
    if ttl <= 0:
        return
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[_key_hash(secret)] = (time.monotonic() + ttl, principal)


def forget_api_keys() -> None:
    """Drop every remembered key (called on revocation and role changes, and by tests)."""
    with _verified_lock:
        _verified.clear()


def _forget_api_keys_at_commit(session: Session) -> None:
    # Now, and again once the change is committed: a request that verified the key in between (it still read
    # the old row) must not keep it remembered for another api_key_cache_seconds.
    forget_api_keys()
    event.listen(session, "after_commit", lambda _s: forget_api_keys(), once=True)
