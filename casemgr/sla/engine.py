"""The SLA engine: pause while waiting on the customer, warn at a share of the target, escalate on breach.

Every SLA event changes the case like any other change: the version is bumped (optimistic lock; a case being
edited at the same moment is skipped and picked up by the next scan) and an audit event is written in the same
transaction. Scans are idempotent: running one twice, or on two workers, changes nothing the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session, col

from casemgr.audit import service as audit
from casemgr.cases.change import Change, change
from casemgr.cases.enums import CaseStatus, Priority, TaskStatus
from casemgr.cases.events import CaseEvent
from casemgr.cases.models import Case, Task
from casemgr.casetypes.registry import get_registry
from casemgr.casetypes.schema import StageDef
from casemgr.casetypes.versions import case_type_of, stages_in_use
from casemgr.clock import now
from casemgr.errors import StaleVersion
from casemgr.limits import TASK_NAME_CHARS
from casemgr.sla.calendar import _utc, get_calendar
from casemgr.sla.chunks import apply_in_transactions, in_pages, read_ids
from casemgr.sla.clock import due_at
from casemgr.sla.enums import SlaState
from casemgr.sla.models import SlaTimer

log = logging.getLogger(__name__)

ACTOR = "system:sla"


def _stage(case: Case) -> StageDef | None:
    try:
        return case_type_of(case).stage(case.stage)
    except Exception:
        return None


def _timer(session: Session, case_id: int) -> SlaTimer:
    timer = session.get(SlaTimer, case_id)
    if timer is None:
        timer = SlaTimer(case_id=case_id)
        session.add(timer)
    return timer


def _remaining_s(at: datetime, due: datetime, business: bool) -> float:
    if business:
        return get_calendar().business_seconds(at, due)
    return (_utc(due) - _utc(at)).total_seconds()


# ---------------------------------------------------------------- pause / resume (a case event listener)


def on_wait_change(session: Session, case: Case, *, was_waiting: bool, from_stage: str | None,
                   previous_due: datetime | None, at: datetime | None = None, actor: str = ACTOR) -> None:
    """Stop or restart the SLA clock when the case starts or stops waiting on the customer.

    Runs inside a case change's transaction (the case version was already bumped there), through
    `on_case_wait_changed`. Entering a wait stores the business time left on the target; leaving it back
    into the same stage gives a due time extended by exactly the paused time.
    """
    at = at or now()
    waiting = bool(case.waiting_on_customer)
    if waiting == was_waiting:
        return
    if waiting:
        stage = from_stage or case.stage
        sd = case_type_of(case, session).stage(stage)
        business = sd.sla.business_hours if sd and sd.sla else True
        remaining = _remaining_s(at, previous_due, business) if previous_due is not None else None
        timer = _timer(session, case.id)  # type: ignore[arg-type]
        timer.paused_at, timer.paused_stage, timer.paused_remaining_s = at, stage, remaining
        timer.next_escalation_at = None  # a paused case is not escalated
        timer.updated_at = at
        case.sla_state = SlaState.PAUSED
        case.sla_due_at = None
        session.add(case)
        audit.record(session, actor=actor, action="sla.paused", case_id=case.id, entity="sla",
                     before={"sla_due_at": previous_due}, after={"paused_stage": stage, "remaining_s": remaining,
                                                                "version": case.version}, at=at)
        return
    timer = session.get(SlaTimer, case.id)
    sd = _stage(case)
    if timer is None or timer.paused_at is None:
        return
    business = sd.sla.business_hours if sd and sd.sla else True
    paused_s = _remaining_s(timer.paused_at, at, business)
    resumed_due = None
    if sd is not None and sd.sla and timer.paused_stage == case.stage:
        remaining = timer.paused_remaining_s
        if remaining is None:  # paused before any target ran: start the stage target now
            remaining = sd.sla.hours * 3600.0
        # Already over target when paused: due now, so the next scan records the breach and escalates.
        resumed_due = due_at(at, remaining / 3600.0, business) if remaining > 0 else at
        case.sla_due_at = resumed_due
        case.sla_hours = case.sla_hours or sd.sla.hours
        case.sla_state = SlaState.ON_TRACK
    elif sd is not None and sd.sla is None and case.sla_state == SlaState.PAUSED:
        case.sla_state = SlaState.NONE
    timer.paused_total_s += max(paused_s, 0.0)
    timer.paused_at, timer.paused_stage, timer.paused_remaining_s = None, None, None
    timer.updated_at = at
    session.add(case)
    audit.record(session, actor=actor, action="sla.resumed", case_id=case.id, entity="sla",
                 after={"paused_s": paused_s, "sla_due_at": case.sla_due_at, "version": case.version}, at=at)


def on_case_wait_changed(event: CaseEvent) -> None:
    """Listener of casemgr.cases.events WAIT_CHANGED (wired in casemgr.listeners)."""
    before = event.before
    on_wait_change(event.session, event.case, was_waiting=bool(before["waiting_on_customer"]),
                   from_stage=before["stage"], previous_due=before["sla_due_at"], at=event.at, actor=event.actor)


# ---------------------------------------------------------------- scan: warnings, breaches, repeat escalations


def _warn(session: Session, case: Case, at: datetime) -> bool:
    # The claim below succeeds only if the case is still the version read here, so this check holds after it.
    if case.sla_state != SlaState.ON_TRACK:
        return False
    try:
        with session.begin_nested(), change(session, case.id or 0, case.version, ACTOR, "sla.at_risk", at=at,
                                            entity="sla") as ch:
            claimed = ch.case
            claimed.sla_state = SlaState.AT_RISK
            ch.audit(before={"sla_state": SlaState.ON_TRACK},
                     after={"sla_state": SlaState.AT_RISK, "sla_due_at": claimed.sla_due_at, "stage": claimed.stage,
                            "version": claimed.version})
    except StaleVersion:
        return False  # being edited right now: the next scan sees it
    from casemgr.notifications.enums import NotificationKind
    from casemgr.notifications.service import notify_owner  # the owner hears before the breach (issue 20)

    notify_owner(session, claimed, NotificationKind.SLA_WARNING,
                 f"SLA at risk, due {claimed.sla_due_at:%Y-%m-%d %H:%M} UTC" if claimed.sla_due_at else "SLA at risk",
                 actor=ACTOR)
    return True


def _apply_actions(session: Session, case: Case, actions: list[str], queue: str, at: datetime, repeat: int,
                   timer: SlaTimer, repeat_every_h: float) -> dict[str, Any]:
    done: dict[str, Any] = {}
    if "raise_priority" in actions:
        current = Priority(case.priority) if case.priority in Priority.values() else Priority.NORMAL
        new = current.raised()
        if new != case.priority:
            done["priority"] = [case.priority, new]
            case.priority = new
    if "move_to_queue" in actions and case.queue != queue:
        done["queue"] = [case.queue, queue]
        case.queue = queue
        owner = next((q.owner_role for q in get_registry().org.queues if q.name == queue), None)
        if owner:
            case.owner_role = owner
    if "notify_lead" in actions:
        task = session.get(Task, timer.escalation_task_id) if timer.escalation_task_id else None
        if task is None or task.status != TaskStatus.OPEN:
            task = Task(case_id=case.id, name=f"SLA breached: {case.reference or case.id} in {case.stage}"[:TASK_NAME_CHARS],
                        kind="task", stage=case.stage, role="lead", source="sla",
                        due_at=at + timedelta(hours=repeat_every_h), created_at=at)
            session.add(task)
            session.flush()
            timer.escalation_task_id = task.id
        done["lead_task"] = task.id
    done["repeat"] = repeat
    return done


def _breach(session: Session, case: Case, at: datetime) -> bool:
    cal = get_calendar()
    esc = cal.escalation_for(case.case_type, case.stage)
    if case.sla_state not in SlaState.running() or case.status != CaseStatus.OPEN:
        return False
    try:
        with session.begin_nested(), change(session, case.id or 0, case.version, ACTOR, "sla.breached", at=at,
                                            entity="sla") as ch:
            _breach_claimed(session, ch, esc, at)
    except StaleVersion:
        return False
    return True


def _breach_claimed(session: Session, ch: Change, esc: Any, at: datetime) -> None:
    claimed = ch.case
    before = {"sla_state": claimed.sla_state, "priority": claimed.priority, "queue": claimed.queue}
    timer = _timer(session, claimed.id)  # type: ignore[arg-type]
    timer.breached_at = at
    timer.episode_stage_entered_at = claimed.stage_entered_at
    timer.escalations = 1
    timer.escalation_task_id = None
    timer.next_escalation_at = at + timedelta(hours=esc.repeat_every_hours)
    timer.updated_at = at
    claimed.sla_state = SlaState.BREACHED
    actions = _apply_actions(session, claimed, list(esc.actions), esc.queue, at, 1, timer, esc.repeat_every_hours)
    ch.audit(before=before,
             after={"sla_state": SlaState.BREACHED, "sla_due_at": claimed.sla_due_at, "stage": claimed.stage,
                    "actions": list(esc.actions), "done": actions, "version": claimed.version})


def _handled(session: Session, case: Case | None, timer: SlaTimer) -> bool:
    if case is None or case.status != CaseStatus.OPEN or case.sla_state != SlaState.BREACHED:
        return True
    if timer.episode_stage_entered_at is not None and _utc(case.stage_entered_at) != _utc(timer.episode_stage_entered_at):
        return True  # the case moved on (and may have come back): that breach is over
    if timer.escalation_task_id:
        task = session.get(Task, timer.escalation_task_id)
        if task is not None and task.status == "done":
            return True  # the lead acknowledged it
    return False


def _repeat(session: Session, timer: SlaTimer, at: datetime) -> bool:
    case = session.get(Case, timer.case_id)
    if _handled(session, case, timer):
        timer.next_escalation_at = None
        timer.updated_at = at
        session.add(timer)
        return False
    assert case is not None
    esc = get_calendar().escalation_for(case.case_type, case.stage)
    try:
        with session.begin_nested(), change(session, case.id or 0, case.version, ACTOR, "sla.escalated", at=at,
                                            entity="sla") as ch:
            _escalate_claimed(session, ch, timer, esc, at)
    except StaleVersion:
        return False
    return True


def _escalate_claimed(session: Session, ch: Change, timer: SlaTimer, esc: Any, at: datetime) -> None:
    claimed = ch.case
    before = {"priority": claimed.priority, "queue": claimed.queue}
    timer.escalations += 1
    timer.next_escalation_at = at + timedelta(hours=esc.repeat_every_hours)
    timer.updated_at = at
    actions = _apply_actions(session, claimed, list(esc.actions), esc.queue, at, timer.escalations, timer,
                             esc.repeat_every_hours)
    session.add(timer)
    ch.audit(before=before, after={"repeat": timer.escalations, "actions": list(esc.actions), "done": actions,
                                   "stage": claimed.stage, "version": claimed.version})


def scan(session: Session, at: datetime | None = None, *, limit: int = 500) -> dict[str, int]:
    """One pass: breaches, repeat escalations, then warnings; at most `limit` events of each kind.

    Returns counts; a caller seeing a full batch (`more`) runs another pass.
    """
    at = at or now()
    out = {"breached": 0, "escalated": 0, "at_risk": 0, "more": 0}
    due = session.execute(
        select(Case).where(col(Case.status) == CaseStatus.OPEN, col(Case.sla_due_at) <= at,
                           col(Case.sla_state).in_(SlaState.running()))
        .order_by(col(Case.sla_due_at), col(Case.id)).limit(limit)
    ).scalars().all()
    for case in due:
        out["breached"] += _breach(session, case, at)
    out["more"] |= len(due) == limit
    timers = session.execute(
        select(SlaTimer).where(SlaTimer.next_escalation_at <= at).order_by(SlaTimer.next_escalation_at).limit(limit)
    ).scalars().all()
    for timer in timers:
        out["escalated"] += _repeat(session, timer, at)
    out["more"] |= len(timers) == limit
    # Warnings: remaining business time <= (1 - warn_at) x target. For each stage the candidates are exactly the
    # cases due before `due_at(now, (1 - warn_at) x stage hours)`; a rule-shortened target is re-checked per case.
    # Per case-types version: a running case keeps the SLA of the version it is pinned to (issue 22).
    for pinned, ct, sd in stages_in_use(session):
        if sd.sla is None or sd.waits_on_customer or sd.final:
            continue
        share = 1.0 - sd.sla.warn_at
        horizon = due_at(at, share * sd.sla.hours, sd.sla.business_hours)
        cands = session.execute(
            select(Case).where(and_(Case.case_type == ct.name, Case.stage == sd.name, Case.status == CaseStatus.OPEN,
                                    Case.sla_state == SlaState.ON_TRACK, Case.sla_due_at > at,
                                    Case.sla_due_at <= horizon, pinned))
            .order_by(Case.sla_due_at, Case.id).limit(limit)
        ).scalars().all()
        for case in cands:
            hours = case.sla_hours or sd.sla.hours
            if case.sla_due_at is None:
                continue
            if _remaining_s(at, case.sla_due_at, sd.sla.business_hours) <= share * hours * 3600.0 + 1e-6:
                out["at_risk"] += _warn(session, case, at)
        out["more"] |= len(cands) == limit
    return out


# ---------------------------------------------------------------- the same scan in short transactions (issue 23)

# Cases per page (and at most per write transaction; casemgr/sla/chunks.py commits earlier on a slow host).
SCAN_CHUNK = 25


def scan_chunked(at: datetime | None = None, *, chunk: int = SCAN_CHUNK, limit: int = 500,
                 budget_s: float | None = None) -> dict[str, int]:
    """`scan` in bounded write transactions (casemgr/sla/chunks.py): the same per-case steps, so the same
    outcome. At most `limit` candidates of each kind per call, and no new page once `budget_s` of wall time is
    spent; `more` says there may be more (the next call re-reads the candidates: a case already handled no
    longer matches). `transactions` counts the write transactions used.

    The candidates of each kind are read first, outside the write lock, from the index that serves their filter, in
    the index's order (the most overdue first, as `scan`): (sla_state, due) per running state, the timers'
    next_escalation_at, (type, stage, due) per stage. So a pass costs what it finds: a keyset walk by id made
    SQLite read the whole table every minute when nothing was due.
    """
    at = at or now()
    out = {"breached": 0, "escalated": 0, "at_risk": 0, "more": 0, "transactions": 0}
    deadline = None if budget_s is None else time.monotonic() + budget_s

    def spent() -> bool:
        # Only after one page at least: every call makes progress, however small the budget or slow the host.
        if deadline is not None and out["transactions"] and time.monotonic() >= deadline:
            out["more"] = 1
            return True
        return False

    def each_chunk(ids: list[int], key: Any, where: list[Any], model: Any, step: Callable[[Session, Any], bool],
                   field: str) -> None:
        def load(session: Session, page: list[int]) -> list[Any]:
            return list(session.execute(select(model).where(*where, key.in_(page)).order_by(key)).scalars().all())

        def count(session: Session, row: Any) -> None:
            out[field] += step(session, row)

        for page in in_pages(ids, chunk):
            if spent():
                return
            out["transactions"] += apply_in_transactions(page, load, count)
        out["more"] |= len(ids) >= limit

    # Breaches: one index range per running state (an IN list over sla_state leads SQLite to the (status, due)
    # index, which also holds every breached open case), merged in due order.
    due_where = [col(Case.status) == CaseStatus.OPEN, col(Case.sla_due_at) <= at,
                 col(Case.sla_state).in_(SlaState.running())]
    due: list[tuple[Any, int]] = []
    for state in SlaState.running():
        due.extend(_read_rows(select(col(Case.sla_due_at), col(Case.id))
                              .where(col(Case.sla_state) == state, col(Case.sla_due_at) <= at,
                                     col(Case.status) == CaseStatus.OPEN)
                              .order_by(col(Case.sla_due_at), col(Case.id)).limit(limit)))
    each_chunk([i for _, i in sorted(due, key=lambda r: (_utc(r[0]), r[1]))[:limit]], col(Case.id), due_where, Case,
               lambda s, case: _breach(s, case, at), "breached")
    timer_where = [col(SlaTimer.next_escalation_at) <= at]
    each_chunk(read_ids(select(col(SlaTimer.case_id)).where(*timer_where)
                        .order_by(col(SlaTimer.next_escalation_at), col(SlaTimer.case_id)).limit(limit)),
               col(SlaTimer.case_id), timer_where, SlaTimer, lambda s, timer: _repeat(s, timer, at), "escalated")
    from casemgr.db import read_session

    with read_session() as s:
        stages = stages_in_use(s)
    for pinned, ct, sd in stages:
        if sd.sla is None or sd.waits_on_customer or sd.final:
            continue
        if spent():
            break
        share = 1.0 - sd.sla.warn_at
        horizon = due_at(at, share * sd.sla.hours, sd.sla.business_hours)
        stage_sla = sd.sla

        def warn(session: Session, case: Case, share: float = share, stage_sla: Any = stage_sla) -> bool:
            hours = case.sla_hours or stage_sla.hours
            if case.sla_due_at is None:
                return False
            if _remaining_s(at, case.sla_due_at, stage_sla.business_hours) <= share * hours * 3600.0 + 1e-6:
                return _warn(session, case, at)
            return False

        warn_where = [pinned, col(Case.case_type) == ct.name, col(Case.stage) == sd.name,
                      col(Case.status) == CaseStatus.OPEN, col(Case.sla_state) == SlaState.ON_TRACK,
                      col(Case.sla_due_at) > at, col(Case.sla_due_at) <= horizon]
        each_chunk(read_ids(select(col(Case.id)).where(*warn_where)
                            .order_by(col(Case.sla_due_at), col(Case.id)).limit(limit)),
                   col(Case.id), warn_where, Case, warn, "at_risk")
    return out


def _read_rows(query: Any) -> list[tuple[Any, int]]:
    from casemgr.db import read_session

    with read_session() as rs:
        return [(r[0], int(r[1])) for r in rs.execute(query).all()]
