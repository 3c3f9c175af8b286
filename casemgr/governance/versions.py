"""Published versions of governed files (policy_versions, by kind): which one is active, history, and making a
new one active with its audit event. Shared by the AI policy (kind 'ai-policy') and the rules (kind 'rules')."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from casemgr.audit.service import record
from casemgr.governance.models import PolicyVersion


def _active(kind: str):  # type: ignore[no-untyped-def]
    return PolicyVersion.kind == kind, PolicyVersion.is_active.is_(True)  # type: ignore[attr-defined]


def active_row(session: Session, kind: str) -> PolicyVersion | None:
    return session.execute(
        select(PolicyVersion).where(*_active(kind)).order_by(PolicyVersion.id.desc()).limit(1)  # type: ignore[union-attr]
    ).scalar_one_or_none()


def active_version(session: Session, kind: str) -> str | None:
    """One indexed query: what every process compares with the version it has cached."""
    return session.execute(
        select(PolicyVersion.version).where(*_active(kind))
        .order_by(PolicyVersion.id.desc()).limit(1)  # type: ignore[union-attr]
    ).scalar_one_or_none()


def history(session: Session, kind: str, limit: int) -> list[PolicyVersion]:
    return list(
        session.execute(
            select(PolicyVersion).where(PolicyVersion.kind == kind)
            .order_by(PolicyVersion.id.desc()).limit(limit)  # type: ignore[union-attr]
        ).scalars()
    )


def activate(
    session: Session, *, kind: str, name: str, version: str, content: str, diff: str, author: str, reason: str,
    action: str, previous: PolicyVersion | None, files: dict[str, Any] | None = None,
) -> PolicyVersion:
    """Store `version` as the one active row of `kind`, with an audit event in the same transaction."""
    session.execute(update(PolicyVersion).where(*_active(kind)).values(is_active=False))
    row = PolicyVersion(kind=kind, name=name, version=version, content=content, files=files, diff=diff,
                        author=author, reason=reason, is_active=True)
    session.add(row)
    session.flush()
    record(session, actor=author, action=action, entity=f"{kind}:{version}",
           before={"version": previous.version} if previous else None,
           after={"version": version, "reason": reason, "policy_version_id": row.id})
    return row
