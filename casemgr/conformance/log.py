"""Traces from the database: the stage visits of each case (the same events and order as the XES export of
casemgr.metrics.export) and the times people worked on it (for handoff delays). Streams case by case."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlmodel import Session, col

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, StageHistory
from casemgr.conformance.analysis import Trace, Visit

# Work by a person on the case: what ends the wait after a handoff. Routing and the worker do not count.
WORK_ACTIONS = ("case.assigned", "task.completed", "note.added")
PEOPLE = ("user:", "apikey:")


def _epoch(ts: datetime) -> float:
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts).timestamp()


def _work(session: Session, case_type: str | None) -> Iterator[tuple[int, float]]:
    q = (select(col(AuditEvent.case_id), col(AuditEvent.ts))
         .where(col(AuditEvent.case_id).is_not(None), col(AuditEvent.action).in_(WORK_ACTIONS),
                or_(*(col(AuditEvent.actor).startswith(p) for p in PEOPLE)))
         .order_by(col(AuditEvent.case_id), col(AuditEvent.ts), col(AuditEvent.seq)))
    if case_type:
        cases = select(col(StageHistory.case_id)).where(col(StageHistory.case_type) == case_type)
        q = q.where(col(AuditEvent.case_id).in_(cases))
    for cid, ts in session.execute(q).yield_per(20_000):
        yield int(cid), _epoch(ts)


def iter_traces(session: Session, *, case_type: str | None = None) -> Iterator[Trace]:
    q = (select(col(StageHistory.case_id), col(StageHistory.case_type), col(StageHistory.stage),
                col(StageHistory.entered_at), col(StageHistory.left_at), col(Case.case_type_version))
         .join(Case, col(Case.id) == col(StageHistory.case_id))
         .order_by(col(StageHistory.case_id), col(StageHistory.entered_at), col(StageHistory.id)))
    if case_type:
        q = q.where(col(StageHistory.case_type) == case_type)
    work = _work(session, case_type)
    pending = next(work, None)
    current: Trace | None = None
    for cid, ct, stage, entered, left, version in session.execute(q).yield_per(20_000):
        if current is None or current.case_id != cid:
            if current is not None:
                yield current
            current = Trace(case_id=cid, case_type=ct, visits=[], version=version)
            # Both streams are ordered by case id: skip work of cases with no history, take this case's.
            while pending is not None and pending[0] < cid:
                pending = next(work, None)
            while pending is not None and pending[0] == cid:
                current.work.append(pending[1])
                pending = next(work, None)
        current.visits.append(Visit(stage, _epoch(entered), _epoch(left) if left is not None else None))
    if current is not None:
        yield current
