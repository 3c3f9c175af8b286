"""Merge duplicates into one surviving case, and move cases between queues.

A merge moves the duplicate's messages (with their attachments) and notes onto the survivor, closes the
duplicate and points it at the survivor (cases.merged_into_id). Both cases get an audit event: the survivor
"case.merged" (what came in), the duplicate "case.merged_into" (where it went), each in the same transaction.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from casemgr.bulk.enums import Outcome
from casemgr.bulk.schemas import BulkIn, BulkResult
from casemgr.cases.change import change
from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case, Note
from casemgr.clock import now
from casemgr.errors import Conflict, DomainError, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from casemgr.intake.models import Message
from casemgr.users.service import Principal


def move_queue(session: Session, case_id: int, version: int, queue: str, actor: str) -> Case:
    with change(session, case_id, version, actor, "case.updated") as ch:
        ch.case.queue = queue
        return ch.case


def merge_one(session: Session, survivor: Case, dup_id: int, dup_version: int, actor: str) -> dict[str, int]:
    """Merge case `dup_id` (at `dup_version`) into `survivor`; the caller holds the survivor's version."""
    if dup_id == survivor.id:
        raise ValidationFailed("a case cannot be merged into itself")
    dup = session.get(Case, dup_id)
    if dup is None:
        raise NotFound(f"case {dup_id} not found")
    if dup.merged_into_id is not None:
        raise InvalidTransition(f"{dup.reference or dup_id} was already merged into case {dup.merged_into_id}")
    if dup.case_type != survivor.case_type:
        raise ValidationFailed(f"{dup.reference} is a {dup.case_type}, {survivor.reference} a {survivor.case_type}: "
                               "only cases of one type merge")
    with change(session, dup_id, dup_version, actor, "case.merged_into") as ch:
        moved_msgs = session.execute(update(Message).where(col(Message.case_id) == dup_id)
                                     .values(case_id=survivor.id)).rowcount  # type: ignore[attr-defined]
        moved_notes = session.execute(update(Note).where(col(Note.case_id) == dup_id)
                                      .values(case_id=survivor.id)).rowcount  # type: ignore[attr-defined]
        at = now()
        c = ch.case
        c.merged_into_id = survivor.id
        c.status, c.closed_at = "closed", at
        c.sla_due_at, c.sla_state, c.sla_hours = None, "none", None
        moved = {"messages": int(moved_msgs or 0), "notes": int(moved_notes or 0)}
        ch.audit(before={"status": ch.before["status"], "version": dup_version},
                 after={"status": "closed", "merged_into": survivor.reference, "merged_into_id": survivor.id,
                        "moved": moved, "version": c.version})
    return moved


def merge_many(session: Session, data: BulkIn, who: Principal) -> list[BulkResult]:
    """Bulk merge: params.survivor (a case id among `cases`, default the oldest) keeps everything."""
    refs = {c.id: c.version for c in data.cases}
    if len(refs) < 2:
        raise ValidationFailed("merge needs at least two cases", field="cases")
    survivor_id = data.params.get("survivor")
    if survivor_id is None:
        survivor_id = session.execute(select(func.min(Case.id)).where(Case.id.in_(list(refs)))).scalar_one()  # type: ignore[union-attr]
    if not isinstance(survivor_id, int) or survivor_id not in refs:
        raise ValidationFailed("params.survivor must be the id of one of the cases", field="params.survivor")
    results: dict[int, BulkResult] = {}
    moved_total = {"messages": 0, "notes": 0}
    merged: list[str] = []
    try:
        with session.begin_nested():
            with change(session, survivor_id, refs[survivor_id], who.actor, "case.merged") as sch:
                survivor = sch.case
                if survivor.status != CaseStatus.OPEN:
                    raise InvalidTransition(f"{survivor.reference} is closed; merge into an open case")
                for dup_id, version in refs.items():
                    if dup_id == survivor_id:
                        continue
                    try:
                        with session.begin_nested():
                            moved = merge_one(session, survivor, dup_id, version, who.actor)
                        for k in moved_total:
                            moved_total[k] += moved[k]
                        ref = session.get(Case, dup_id)
                        merged.append(ref.reference if ref and ref.reference else str(dup_id))
                        results[dup_id] = BulkResult(id=dup_id, result=Outcome.OK,
                                                     message=f"merged into {survivor.reference}",
                                                     version=ref.version if ref else None)
                    except DomainError as exc:
                        results[dup_id] = _fail(dup_id, exc)
                sch.audit(before={"version": refs[survivor_id]},
                          after={"merged": merged, "moved": moved_total, "version": survivor.version})
                if not merged:
                    raise _NothingMerged
            results[survivor_id] = BulkResult(id=survivor_id, result=Outcome.OK,
                                              message=f"kept; {len(merged)} merged into it", version=survivor.version)
    except _NothingMerged:
        results[survivor_id] = BulkResult(id=survivor_id, result=Outcome.INVALID,
                                          message="nothing merged into it: every other case was skipped")
    except DomainError as exc:
        # The survivor itself changed or is not mergeable: no duplicate moves anywhere.
        why = f"survivor {survivor_id}: {exc.message}"
        return [_fail(survivor_id, exc)] + [BulkResult(id=i, result=_fail(i, exc).result, message=why)
                                            for i in refs if i != survivor_id]
    return [results[c.id] for c in data.cases]


class _NothingMerged(Exception):
    pass


def _fail(case_id: int, exc: DomainError) -> BulkResult:
    if isinstance(exc, PermissionDenied):
        outcome = Outcome.FORBIDDEN
    elif isinstance(exc, InvalidTransition | ValidationFailed | NotFound):
        outcome = Outcome.INVALID
    elif isinstance(exc, Conflict):
        outcome = Outcome.CONFLICT
    else:
        outcome = Outcome.INVALID
    return BulkResult(id=case_id, result=outcome, message=exc.message)
