"""Published AI policy versions in policy_versions (kind='ai-policy'): exactly one row is active.

Publishing and rolling back each write a new row (author, reason, unified diff against the previously
active version) plus an audit event, in the caller's transaction.
"""

from __future__ import annotations

import difflib

from sqlmodel import Session

from casemgr.governance import versions
from casemgr.governance.models import PolicyVersion

KIND = "ai-policy"


def active_row(session: Session) -> PolicyVersion | None:
    return versions.active_row(session, KIND)


def active_version(session: Session) -> str | None:
    return versions.active_version(session, KIND)


def history(session: Session, limit: int = 100) -> list[PolicyVersion]:
    return versions.history(session, KIND, limit)


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
    row = versions.activate(session, kind=KIND, name="ai-policy.yaml", version=version, content=text, diff=diff,
                            author=author, reason=reason, action=action, previous=current)
    return row, True
