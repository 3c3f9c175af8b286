"""Check, diff, publish, roll back and list versions of a document kind in policy_versions.

Exactly one row per kind is active. Publishing or rolling back validates first (nothing is stored on
failure), then writes a new active row (author, reason, diff against the previously active version) and
an audit event `<kind>.<action>` in the caller's transaction. Publishing the same content again is a no-op.

Before the first publish of a kind, the shipped file(s) are recorded as version 1 (an inactive baseline
row, audited as `<kind>.baseline`), so "roll back to what we shipped" works like any other rollback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from casemgr.audit.service import record
from casemgr.documents.document import Document, DocumentType
from casemgr.documents.enums import BASELINE_AUTHOR, BASELINE_REASON, VersionAction
from casemgr.documents.models import PolicyVersion
from casemgr.errors import NotFound, ValidationFailed
from casemgr.policyfile import Problem

log = logging.getLogger(__name__)
ROLLBACK_SCAN = 1000  # versions searched for a rollback target


class NoVersion(NotFound):
    """Nothing published yet, or no version matches the reference."""


class AmbiguousVersion(ValidationFailed):
    """A version prefix matches more than one version."""


@dataclass
class Published:
    row: PolicyVersion
    changed: bool  # False: that version was already active, nothing was written
    diff: str
    value: Any  # what the kind's validate() returned (a Policy, a compiled rule set, ...)

    @property
    def version(self) -> str:
        return self.row.version

    @property
    def id(self) -> int:
        return int(self.row.id or 0)


# ---------------------------------------------------------------- reading


def _active(kind: str) -> tuple[Any, Any]:
    return col(PolicyVersion.kind) == kind, col(PolicyVersion.is_active).is_(True)


def active_row(session: Session, kind: str) -> PolicyVersion | None:
    return session.execute(
        select(PolicyVersion).where(*_active(kind)).order_by(col(PolicyVersion.id).desc()).limit(1)
    ).scalar_one_or_none()


def active_version(session: Session, kind: str) -> str | None:
    """The cheap check (one indexed query) every process compares with the version it has loaded."""
    return session.execute(
        select(col(PolicyVersion.version)).where(*_active(kind)).order_by(col(PolicyVersion.id).desc()).limit(1)
    ).scalar_one_or_none()


def history(session: Session, kind: str, limit: int = 100) -> list[PolicyVersion]:
    """Versions newest first (the baseline, when recorded, is the oldest)."""
    return list(session.execute(
        select(PolicyVersion).where(col(PolicyVersion.kind) == kind)
        .order_by(col(PolicyVersion.id).desc()).limit(limit)
    ).scalars())


def find(session: Session, kind: str, ref: str) -> PolicyVersion:
    """A version by content hash (or a unique prefix of it) or by row id."""
    matches = [r for r in history(session, kind, ROLLBACK_SCAN) if r.version.startswith(ref) or str(r.id) == ref]
    if not matches:
        raise NoVersion(f"no {kind} version {ref!r}")
    if len({r.version for r in matches}) > 1:
        raise AmbiguousVersion(f"version prefix {ref!r} is ambiguous", field="to")
    return matches[0]


def active_document(session: Session, dtype: DocumentType[Any]) -> Document | None:
    row = active_row(session, dtype.kind)
    return dtype.from_row(row) if row is not None else None


def in_force(session: Session, dtype: DocumentType[Any]) -> Document:
    """The published active version, else the shipped file(s)."""
    return active_document(session, dtype) or dtype.shipped()


def check(dtype: DocumentType[Any], doc: Document, *, label: str | None = "candidate") -> list[Problem]:
    """Every problem of a candidate (file:line), or [] when it could be published."""
    try:
        dtype.validate(doc, label=label)
    except Exception as exc:
        problems = getattr(exc, "problems", None)
        if not problems:
            raise
        return list(problems)
    return []


def diff(session: Session, dtype: DocumentType[Any], doc: Document) -> str:
    """Unified diff from the document in force to a candidate."""
    return dtype.diff(in_force(session, dtype), doc)


# ---------------------------------------------------------------- writing


def _activate(session: Session, dtype: DocumentType[Any], doc: Document, *, diff: str, author: str, reason: str,
              action: VersionAction, previous: PolicyVersion | None, active: bool = True,
              extra: dict[str, Any] | None = None) -> PolicyVersion:
    if active:
        session.execute(update(PolicyVersion).where(*_active(dtype.kind)).values(is_active=False))
    content, files = dtype.to_row(doc)
    row = PolicyVersion(kind=dtype.kind, name=dtype.row_name, version=doc.version, content=content, files=files,
                        diff=diff, author=author, reason=reason, is_active=active)
    session.add(row)
    session.flush()
    record(session, actor=author, action=f"{dtype.kind}.{action}", entity=f"{dtype.kind}:{doc.version}",
           before={"version": previous.version} if previous else None,
           after={"version": doc.version, "reason": reason, "policy_version_id": row.id, **(extra or {})})
    return row


def record_baseline(session: Session, dtype: DocumentType[Any], *, unless: str | None = None) -> PolicyVersion | None:
    """Store the shipped file(s) as version 1 of a kind that has no versions yet (inactive: they are already in
    force). Skipped when versions exist, when the shipped version is `unless` (the first publish is the shipped
    content itself, so it is version 1), or when the shipped file(s) are missing or invalid."""
    if history(session, dtype.kind, 1):
        return None
    try:
        doc = dtype.shipped()
        if doc.version == unless:
            return None
        dtype.validate(doc, label=str(dtype.shipped_path()))
    except Exception as exc:  # noqa: BLE001 - an unusable shipped file is not a baseline; publishing goes on
        log.warning("%s: shipped file(s) not recorded as a baseline: %s", dtype.kind, exc)
        return None
    return _activate(session, dtype, doc, diff="", author=BASELINE_AUTHOR, reason=BASELINE_REASON,
                     action=VersionAction.BASELINE, previous=None, active=False)


def _store(session: Session, dtype: DocumentType[Any], doc: Document, value: Any, *, author: str, reason: str,
           action: VersionAction, extra: dict[str, Any] | None) -> Published:
    current = active_row(session, dtype.kind)
    if current is not None and current.version == doc.version:
        return Published(current, False, "", value)
    # The first publish of something other than the shipped file(s) records them first, as version 1.
    previous = current if current is not None else record_baseline(session, dtype, unless=doc.version)
    diff = dtype.diff(dtype.from_row(previous) if previous is not None else None, doc)
    row = _activate(session, dtype, doc, diff=diff, author=author, reason=reason, action=action,
                    previous=previous, extra=extra)
    return Published(row, True, diff, value)


def _required(author: str, reason: str | None) -> tuple[str, str]:
    if not author or not author.strip():
        raise ValidationFailed("an author is required", field="author")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    return author.strip(), reason.strip()


def publish(session: Session, dtype: DocumentType[Any], doc: Document, *, author: str, reason: str,
            label: str | None = "candidate", approved_by: str | None = None) -> Published:
    """Validate `doc` and make it the active version (with reason and author; `approved_by` is recorded in the
    audit event when a change request was approved by someone else)."""
    author, reason = _required(author, reason)
    value = dtype.validate(doc, label=label)
    extra = {"approved_by": approved_by} if approved_by else None
    return _store(session, dtype, doc, value, author=author, reason=reason, action=VersionAction.PUBLISH,
                  extra=extra)


def rollback(session: Session, dtype: DocumentType[Any], *, author: str, reason: str | None = None,
             to: str | None = None) -> Published:
    """Re-activate an earlier version: `to` is a version hash (or unique prefix) or a row id; default is the
    version that was active before the current one. The old content is validated again (org.yaml may have
    changed since); an invalid one is refused."""
    current = active_row(session, dtype.kind)
    if current is None:
        raise NoVersion(f"no published {dtype.kind} version to roll back from")
    if to is None:
        rows = history(session, dtype.kind, ROLLBACK_SCAN)
        target = next((r for r in rows if (r.id or 0) < (current.id or 0) and r.version != current.version), None)
        if target is None:
            raise NoVersion(f"no earlier {dtype.kind} version to roll back to")
    else:
        target = find(session, dtype.kind, to)
    author, reason = _required(author, reason or f"rollback to {target.version}")
    doc = dtype.from_row(target)
    value = dtype.validate(doc, label=f"policy_versions:{target.version}")
    return _store(session, dtype, doc, value, author=author, reason=reason, action=VersionAction.ROLLBACK,
                  extra=None)
