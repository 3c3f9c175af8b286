"""Published AI policy versions in policy_versions (kind='ai-policy'): exactly one row is active.

Publishing and rolling back each write a new row (author, reason, unified diff against the previously
active version) plus an audit event, in the caller's transaction.
"""

from __future__ import annotations

import difflib

from sqlalchemy import select, update
from sqlmodel import Session

from casemgr.governance.models import PolicyVersion

KIND = "ai-policy"


def active_row(session: Session) -> PolicyVersion | None:
    return session.execute(
        select(PolicyVersion)
        .where(PolicyVersion.kind == KIND, PolicyVersion.is_active.is_(True))  # type: ignore[attr-defined]
        .order_by(PolicyVersion.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).scalar_one_or_none()


def active_version(session: Session) -> str | None:
    """One indexed query: the version every process compares with its cached policy."""
    return session.execute(
        select(PolicyVersion.version)
        .where(PolicyVersion.kind == KIND, PolicyVersion.is_active.is_(True))  # type: ignore[attr-defined]
        .order_by(PolicyVersion.id.desc())  # type: ignore[union-attr]
        .limit(1)
    ).scalar_one_or_none()


def history(session: Session, limit: int = 100) -> list[PolicyVersion]:
    return list(
        session.execute(
            select(PolicyVersion).where(PolicyVersion.kind == KIND)
            .order_by(PolicyVersion.id.desc()).limit(limit)  # type: ignore[union-attr]
        ).scalars()
    )


def text_diff(old: str | None, new: str, old_name: str = "active", new_name: str = "candidate") -> str:
    return "".join(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"a/{old_name}" if old is not None else "/dev/null", tofile=f"b/{new_name}",
        )
    )


def store_version(
    session: Session, text: str, version: str, *, author: str, reason: str, action: str, base_text: str | None
) -> tuple[PolicyVersion, bool]:
    """Make `text` the active version; returns (row, changed). Same version as active: no new row."""
    current = active_row(session)
    if current is not None and current.version == version:
        return current, False
    diff = text_diff(current.content if current else base_text, text,
                     current.version if current else "file", version)
    session.execute(
        update(PolicyVersion)
        .where(PolicyVersion.kind == KIND, PolicyVersion.is_active.is_(True))  # type: ignore[attr-defined]
        .values(is_active=False)
    )
    row = PolicyVersion(kind=KIND, name="ai-policy.yaml", version=version, content=text, diff=diff,
                        author=author, reason=reason, is_active=True)
    session.add(row)
    session.flush()
    from casemgr.audit.service import record

    record(session, actor=author, action=action, entity=f"ai-policy:{version}",
           before={"version": current.version} if current else None,
           after={"version": version, "reason": reason, "policy_version_id": row.id})
    return row, True
