"""Published AI policy versions (kind 'ai-policy' in casemgr.documents): exactly one row is active.

Kept as the AI policy's short names for the governance pages; publishing and rollback live in lifecycle.py.
"""

from __future__ import annotations

from sqlmodel import Session

from casemgr.documents import service as documents
from casemgr.documents.document import unified_diff
from casemgr.documents.models import PolicyVersion
from casemgr.governance.policy import FILE_NAME, KIND


def active_row(session: Session) -> PolicyVersion | None:
    return documents.active_row(session, KIND)


def active_version(session: Session) -> str | None:
    return documents.active_version(session, KIND)


def history(session: Session, limit: int = 100) -> list[PolicyVersion]:
    return documents.history(session, KIND, limit)


def text_diff(old: str | None, new: str, old_name: str = "active", new_name: str = "candidate") -> str:
    return unified_diff({FILE_NAME: old} if old is not None else {}, {FILE_NAME: new},
                        old_label=old_name, new_label=new_name)
