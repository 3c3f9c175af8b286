"""Change requests: four eyes on publishing a governed document (the AI policy, the rules).

A governance lead drafts a complete candidate with a reason (`request`); it is validated at once (nothing invalid
is ever stored) and waits. A *different* governance lead approves it (`approve`: then, and only then, it is
published through service.publish(..., approved_by=)) or rejects it with a comment (`reject`). Every step writes
an audit event `<kind>.change_requested|change_approved|change_rejected` in the same transaction.

Who counts as "different": another user (by user id when both are known, else by actor string). An admin who
granted the governance role to themselves never counts as a second pair of eyes, and cannot approve at all
until somebody else grants it (the audit trail of user.roles_changed says who granted it).

The setting `single_person_publish` (off by default and in the demo) lets the author's own request be approved
at once, for installations with one governance lead; it is recorded as such in the audit event.

Stable API (shared by the AI policy, rules, case types/SOPs and AI model rooms; change it only compatibly):
`request(session, kind, files, actor=, user_id=, roles=, reason=)` -> ChangeRequest (raises the kind's
PolicyFileError for an invalid candidate, NothingToChange when it is already in force), `approve(...)` ->
(ChangeRequest, service.Published), `reject(..., comment=)`, `may_decide(...)` (None or why not: pages ask it so
they never offer a button that answers 403), `get`, `listing`, `as_dict`, `single_person_publish()`.
A new kind joins by a branch in `document_type()`; nothing else here changes. Callers: governance.lifecycle
(request_publish: API, CLI `casemgr policy publish`, /governance/policy and its form editor), rules.api and the
rules CLI (`casemgr rules publish` drafts a request too), casetypes, learning.activation; deciding happens in
governance.changes_api (API and pages) and `casemgr policy approve|reject` for every kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from casemgr.audit.models import AuditEvent
from casemgr.audit.service import record
from casemgr.clock import now
from casemgr.documents import service
from casemgr.documents.document import DocumentType
from casemgr.documents.enums import ChangeAction, ChangeStatus, DocumentKind
from casemgr.documents.models import ChangeRequest
from casemgr.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

LEAD_ROLE = "governance"
MAX_COMMENT = 2000


class NothingToChange(ValidationFailed):
    """The candidate is the version already in force: no request is stored (publish used to be a no-op here)."""


def document_type(kind: str) -> DocumentType[Any]:
    """The document types that go through change requests (imported lazily: they live in their own rooms)."""
    if kind == DocumentKind.AI_POLICY:
        from casemgr.governance.policy import AI_POLICY

        return AI_POLICY
    if kind == DocumentKind.RULES:
        from casemgr.rules.store import RULES

        return RULES
    if kind == DocumentKind.AI_MODEL:
        from casemgr.learning.model_doc import AI_MODEL

        return AI_MODEL
    if kind in (DocumentKind.CASE_TYPES, DocumentKind.SOP):
        from casemgr.casetypes.documents import CASE_TYPES, SOPS

        return CASE_TYPES if kind == DocumentKind.CASE_TYPES else SOPS
    raise ValidationFailed(f"{kind!r} changes do not go through change requests", field="kind")


def single_person_publish() -> bool:
    from casemgr.config import get_settings

    return bool(get_settings().single_person_publish)


def _require_lead(roles: Iterable[str], what: str) -> None:
    if LEAD_ROLE not in set(roles):
        raise PermissionDenied(f"{what} needs the {LEAD_ROLE!r} role")


def _same_person(row: ChangeRequest, actor: str, user_id: int | None) -> bool:
    if user_id is not None and row.author_user_id is not None:
        return user_id == row.author_user_id
    return actor == row.author


def self_granted(session: Session, user_id: int | None, role: str = LEAD_ROLE) -> bool:
    """Whether the latest grant of `role` to this user was made by the user themselves (user.roles_changed)."""
    if user_id is None:
        return False
    events = session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == "user.roles_changed",
                                 col(AuditEvent.entity) == f"user:{user_id}")
        .order_by(col(AuditEvent.seq).desc()).limit(200)
    ).scalars()
    from casemgr.users.models import User

    user = session.get(User, user_id)
    me = f"user:{user.username}" if user is not None else None
    for ev in events:
        before = set((ev.before or {}).get("roles") or [])
        after = set((ev.after or {}).get("roles") or [])
        if role in after and role not in before:
            return ev.actor == me
    return False


def may_decide(session: Session, row: ChangeRequest, *, actor: str, user_id: int | None,
               roles: Iterable[str]) -> str | None:
    """Why this person may not approve/reject `row` (None: they may). The pages ask it so they never offer a
    button that would answer 403."""
    if LEAD_ROLE not in set(roles):
        return f"deciding a change request needs the {LEAD_ROLE!r} role"
    if row.status != ChangeStatus.PENDING:
        return f"change request {row.id} is already {row.status}"
    if _same_person(row, actor, user_id) and not single_person_publish():
        return "four eyes: a different governance lead must decide your own change request"
    if self_granted(session, user_id):
        return "you granted yourself the governance role: another admin must grant it before you can decide"
    return None


def get(session: Session, request_id: int) -> ChangeRequest:
    row = session.get(ChangeRequest, request_id)
    if row is None:
        raise NotFound(f"no change request {request_id}")
    return row


def listing(session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100,
            before_id: int | None = None) -> list[ChangeRequest]:
    """Newest first; keyset paging by id (`before_id`)."""
    q = select(ChangeRequest).order_by(col(ChangeRequest.id).desc()).limit(limit)
    if status:
        q = q.where(col(ChangeRequest.status) == status)
    if kind:
        q = q.where(col(ChangeRequest.kind) == kind)
    if before_id is not None:
        q = q.where(col(ChangeRequest.id) < before_id)
    return list(session.execute(q).scalars())


def as_dict(row: ChangeRequest, *, with_files: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "kind": row.kind, "version": row.version, "base_version": row.base_version,
        "status": row.status, "reason": row.reason, "author": row.author, "decided_by": row.decided_by,
        "comment": row.comment, "created_at": row.created_at.isoformat() if row.created_at else None,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "published_version_id": row.published_version_id, "diff": row.diff,
    }
    if with_files:
        out["files"] = row.files
    return out


def _audit(session: Session, row: ChangeRequest, action: ChangeAction, actor: str, **after: Any) -> None:
    record(session, actor=actor, action=f"{row.kind}.{action}", entity=f"change_request:{row.id}",
           before={"status": ChangeStatus.PENDING} if action != ChangeAction.REQUESTED else None,
           after={"status": row.status, "kind": row.kind, "version": row.version, "reason": row.reason,
                  "author": row.author, **after})


def request(session: Session, kind: str, files: dict[str, str], *, actor: str, user_id: int | None,
            roles: Iterable[str], reason: str) -> ChangeRequest:
    """Validate a complete candidate and store it as a pending change request (published at once only when
    single_person_publish is on). Raises the kind's PolicyFileError (file:line) for an invalid candidate."""
    roles = set(roles)
    _require_lead(roles, "drafting a change request")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    dtype = document_type(kind)
    doc = dtype.make(files)
    dtype.validate(doc, label="candidate")
    active = service.active_version(session, dtype.kind)
    if active == doc.version:  # (the shipped file(s), before any publish, may still be published as version 1)
        raise NothingToChange(f"nothing to change: {doc.version} is already active", field="text",
                              version=doc.version)
    in_force = service.in_force(session, dtype)
    row = ChangeRequest(kind=dtype.kind, version=doc.version, base_version=active,
                        files=dict(doc.files), diff=dtype.diff(in_force, doc), reason=reason.strip(), author=actor,
                        author_user_id=user_id, status=ChangeStatus.PENDING)
    session.add(row)
    session.flush()
    _audit(session, row, ChangeAction.REQUESTED, actor)
    if single_person_publish():
        approve(session, int(row.id or 0), actor=actor, user_id=user_id, roles=roles,
                comment="single-person publish (setting single_person_publish)")
    return row


def _claim(session: Session, row: ChangeRequest, status: ChangeStatus, *, actor: str, user_id: int | None,
           comment: str | None) -> None:
    """Move pending -> status exactly once: two leads deciding at the same moment get one win and one 409."""
    res = session.execute(
        update(ChangeRequest).where(col(ChangeRequest.id) == row.id, col(ChangeRequest.status) == ChangeStatus.PENDING)
        .values(status=status, decided_by=actor, decided_by_user_id=user_id, comment=comment, decided_at=now())
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"change request {row.id} was decided by someone else meanwhile")
    session.refresh(row)


def _check_decider(session: Session, row: ChangeRequest, *, actor: str, user_id: int | None,
                   roles: Iterable[str]) -> None:
    why = may_decide(session, row, actor=actor, user_id=user_id, roles=roles)
    if why is None:
        return
    if row.status != ChangeStatus.PENDING:
        raise Conflict(why)
    raise PermissionDenied(why)


def approve(session: Session, request_id: int, *, actor: str, user_id: int | None, roles: Iterable[str],
            comment: str | None = None) -> tuple[ChangeRequest, service.Published]:
    """A second lead approves: the candidate is validated again and published with approved_by=this lead."""
    row = get(session, request_id)
    _check_decider(session, row, actor=actor, user_id=user_id, roles=roles)
    dtype = document_type(row.kind)
    current = service.active_version(session, dtype.kind)
    if current != row.base_version:
        raise Conflict(f"the {row.kind} in force changed since change request {row.id} was drafted "
                       f"({row.base_version or 'shipped file'} -> {current}); draft it again")
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    _claim(session, row, ChangeStatus.PUBLISHED, actor=actor, user_id=user_id, comment=comment)
    published = service.publish(session, dtype, dtype.make(row.files), author=row.author, reason=row.reason,
                                approved_by=actor)
    row.published_version_id = published.id
    session.add(row)
    session.flush()
    _audit(session, row, ChangeAction.APPROVED, actor, comment=comment, published_version=published.version,
           single_person=_same_person(row, actor, user_id))
    return row, published


def reject(session: Session, request_id: int, *, actor: str, user_id: int | None, roles: Iterable[str],
           comment: str) -> ChangeRequest:
    """A second lead rejects, with a comment that says why; nothing is published."""
    if not comment or not comment.strip():
        raise ValidationFailed("a comment is required to reject a change request", field="comment")
    row = get(session, request_id)
    _check_decider(session, row, actor=actor, user_id=user_id, roles=roles)
    _claim(session, row, ChangeStatus.REJECTED, actor=actor, user_id=user_id, comment=comment.strip()[:MAX_COMMENT])
    _audit(session, row, ChangeAction.REJECTED, actor, comment=row.comment)
    return row
