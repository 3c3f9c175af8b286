"""Draft -> check -> diff -> publish (four eyes) -> rollback for case types and SOPs (issue 22).

Thin: casemgr.documents does the versions (service) and the change requests (changes: a second governance lead
approves unless single_person_publish is on). After a publish or rollback in this process the cached working
forms are refreshed at once; other processes notice within a second (casemgr.casetypes.registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session

from casemgr.casetypes.documents import CASE_TYPES, SOPS
from casemgr.documents import changes
from casemgr.documents import service as documents
from casemgr.documents.document import DocumentType
from casemgr.documents.enums import DocumentKind
from casemgr.errors import PermissionDenied, ValidationFailed
from casemgr.policyfile import Problem

KINDS: dict[str, DocumentType[Any]] = {DocumentKind.CASE_TYPES: CASE_TYPES, DocumentKind.SOP: SOPS}


def dtype_of(kind: str) -> DocumentType[Any]:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValidationFailed(f"unknown process document {kind!r}; known: {', '.join(KINDS)}",
                               field="kind") from None


def refresh_caches(session: Session | None = None) -> None:
    """Make this process use what was just published (new cases, SOP texts, the model view)."""
    from casemgr.casetypes.registry import refresh_registry
    from casemgr.runtime import current

    refresh_registry(session)
    current().sops.reset()  # loaded again on next use


def check(kind: str, files: Mapping[str, str]) -> list[Problem]:
    dtype = dtype_of(kind)
    return documents.check(dtype, dtype.make(files))


def diff(session: Session, kind: str, files: Mapping[str, str]) -> str:
    dtype = dtype_of(kind)
    return documents.diff(session, dtype, dtype.make(files))


def in_force_files(session: Session, kind: str) -> dict[str, str]:
    return dict(documents.in_force(session, dtype_of(kind)).files)


def request_publish(session: Session, kind: str, files: Mapping[str, str], *, actor: str, user_id: int | None,
                    roles: Iterable[str], reason: str) -> dict[str, Any]:
    """Validate a complete candidate and submit it as a change request (published at once only with
    single_person_publish). Raises the kind's PolicyFileError (file:line) for an invalid candidate."""
    dtype = dtype_of(kind)
    row = changes.request(session, dtype.kind, dict(files), actor=actor, user_id=user_id, roles=roles,
                          reason=reason)
    if row.status == "published":
        refresh_caches(session)
    return {"request": changes.as_dict(row), "status": row.status, "version": row.version, "diff": row.diff or ""}


def rollback(session: Session, kind: str, *, actor: str, roles: Iterable[str], reason: str | None,
             to: str | None = None) -> documents.Published:
    if changes.LEAD_ROLE not in set(roles):
        raise PermissionDenied(f"rolling back needs the {changes.LEAD_ROLE!r} role")
    dtype = dtype_of(kind)
    if kind == DocumentKind.CASE_TYPES and to:
        from casemgr.casetypes.versions import resolve

        to = resolve(session, to, field="to")
    published = documents.rollback(session, dtype, author=actor, reason=reason, to=to)
    refresh_caches(session)
    return published


def versions(session: Session, kind: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = documents.history(session, dtype_of(kind).kind, limit)
    numbers: dict[str, int] = {}
    for row in reversed(rows):
        numbers.setdefault(row.version, len(numbers) + 1)
    return [{"id": r.id, "number": numbers[r.version], "version": r.version, "is_active": r.is_active,
             "author": r.author, "reason": r.reason, "created_at": r.created_at.isoformat() if r.created_at else None,
             "diff": r.diff or ""} for r in rows]
