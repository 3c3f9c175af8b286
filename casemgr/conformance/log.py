"""Traces from the database: the stage visits of each case (the same events and order as the XES export of
casemgr.metrics.export) and the times people worked on it (for handoff delays). Streams case by case.

`traces_in_chunks` reads the same traces one range of case ids at a time, each range in its own short read
transaction: the worker's hourly refresh replays every case (at 1M cases on SQLite, 72 s in one read transaction
before issue 23's change, 42 s now), and while one read transaction lasts, SQLite cannot checkpoint the WAL past
its snapshot as intake keeps writing. It does not rest between ranges as the metrics catch-up does: it runs in the
worker's long lane (casemgr.worker), whose other rebuilds wait until it ends, and resting would double that wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, StageHistory
from casemgr.conformance.analysis import Trace, Visit
from casemgr.db import epoch_seconds, read_session

# Work by a person on the case: what ends the wait after a handoff. Routing and the worker do not count.
WORK_ACTIONS = ("case.assigned", "task.completed", "note.added")
PEOPLE = ("user:", "apikey:")


def _rows(session: Session, q: Any) -> Iterator[Any]:
    """Plain rows through Core, times as epoch seconds computed in SQL: at 1M cases, the ORM's result path and a
    datetime parsed and converted per time were over half of a full replay's CPU (issue 23)."""
    return iter(session.connection().execute(q).yield_per(20_000))


CHUNK_CASES = 5_000  # case ids per read transaction in traces_in_chunks (~25,000 visits, ~0.2 s at 1M cases)


def _work(session: Session, case_type: str | None, ids: tuple[int, int] | None) -> Iterator[tuple[int, float]]:
    q = (select(col(AuditEvent.case_id), epoch_seconds(session, col(AuditEvent.ts)))
         .where(col(AuditEvent.case_id).is_not(None), col(AuditEvent.action).in_(WORK_ACTIONS),
                or_(*(col(AuditEvent.actor).startswith(p) for p in PEOPLE)))
         .order_by(col(AuditEvent.case_id), col(AuditEvent.ts), col(AuditEvent.seq)))
    if ids is not None:
        q = q.where(col(AuditEvent.case_id) >= ids[0], col(AuditEvent.case_id) < ids[1])
    if case_type:
        cases = select(col(StageHistory.case_id)).where(col(StageHistory.case_type) == case_type)
        q = q.where(col(AuditEvent.case_id).in_(cases))
    for cid, ts in _rows(session, q):
        yield int(cid), ts


def iter_traces(session: Session, *, case_type: str | None = None,
                ids: tuple[int, int] | None = None) -> Iterator[Trace]:
    """Every case's trace in case id order; `ids` = (first, end): only cases first <= id < end."""
    q = (select(col(StageHistory.case_id), col(StageHistory.case_type), col(StageHistory.stage),
                epoch_seconds(session, col(StageHistory.entered_at)),
                epoch_seconds(session, col(StageHistory.left_at)), col(Case.case_type_version))
         .join(Case, col(Case.id) == col(StageHistory.case_id))
         .order_by(col(StageHistory.case_id), col(StageHistory.entered_at), col(StageHistory.id)))
    if case_type:
        q = q.where(col(StageHistory.case_type) == case_type)
    if ids is not None:
        q = q.where(col(StageHistory.case_id) >= ids[0], col(StageHistory.case_id) < ids[1])
    work = _work(session, case_type, ids)
    pending = next(work, None)
    current: Trace | None = None
    for cid, ct, stage, entered, left, version in _rows(session, q):
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
        current.visits.append(Visit(stage, entered, left))
    if current is not None:
        yield current


def traces_in_chunks(*, case_type: str | None = None, chunk_cases: int | None = None,
                     stats: dict[str, int] | None = None) -> Iterator[Trace]:
    """iter_traces over every case, `chunk_cases` (default CHUNK_CASES) case ids per read transaction; a range's
    traces are read and its transaction ended before they are handed on. The ranges span the case ids that had
    a history when it began (a case opened meanwhile waits for the next refresh). `stats["chunks"]`: ranges read."""
    chunk_cases = chunk_cases or CHUNK_CASES
    with read_session() as s:
        first, last = s.execute(select(func.min(StageHistory.case_id), func.max(StageHistory.case_id))).one()
    if stats is not None:
        stats["chunks"] = 0
    if first is None:
        return
    start = int(first)
    while start <= last:
        end = start + chunk_cases
        with read_session() as s:
            chunk = list(iter_traces(s, case_type=case_type, ids=(start, end)))
        if stats is not None:
            stats["chunks"] += 1
        yield from chunk
        start = end
