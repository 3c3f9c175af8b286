"""The one way to change a stored case: `with change(session, case_id, version, actor, action) as ch:`.

On entry the case's version is claimed with a conditional UPDATE (a stale `version` gets 409 StaleVersion, never
a silent overwrite; `version=None` is for system actors that must not conflict, such as mail threading onto a
case) and the case is snapshotted. The body changes `ch.case` (fields, tasks, stage). On a clean exit:

 1. case events are published (stage entered, waiting flipped: the SLA clock listens), in the transaction;
 2. ONE audit event is written for the change: by default the before/after diff of the case, or what the
    body set with `ch.audit(...)` (notes, tasks, messages and AI decisions describe themselves);
 3. the rules re-route the case once, when the body asked for it (`ch.reroute(reason)`), always or only
    when a fact the rules read changed.

An exception in the body propagates and nothing is recorded; the caller's transaction (or savepoint) rolls
back the claim with the rest. Everything runs in the caller's session: no commit here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.cases.events import CaseEvent, CaseEventName, publish
from casemgr.cases.models import Case
from casemgr.cases.routing import route_case
from casemgr.clock import now
from casemgr.errors import NotFound, StaleVersion

SNAPSHOT_FIELDS = (
    "stage", "status", "subject", "priority", "queue", "owner_role", "assignee_id", "category", "urgency",
    "sentiment", "amount", "customer_tier", "fields", "sla_due_at", "sla_state", "waiting_on_customer", "version",
)
# Case facts the rules read (casemgr.rules.facts): changing one of them re-routes when the change asks for it.
FACT_FIELDS = frozenset({"category", "amount", "priority", "urgency", "fields"})


def snapshot(case: Any, keys: Collection[str] = SNAPSHOT_FIELDS) -> dict[str, Any]:
    return {k: getattr(case, k) for k in keys}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def _claim_version(session: Session, case_id: int, expected: int | None) -> Case:
    """Bump the version atomically; 409 if someone else changed the case since `expected` was read."""
    stmt = update(Case).where(Case.id == case_id)
    if expected is not None:
        stmt = stmt.where(Case.version == expected)
    result = session.execute(
        stmt.values(version=Case.version + 1, updated_at=now()).execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        current = session.get(Case, case_id)
        if current is None:
            raise NotFound(f"case {case_id} not found")
        session.refresh(current)
        last = audit.events_for_case(session, case_id)
        by = last[-1].actor if last else "someone"
        raise StaleVersion(
            f"case {case_id} was changed by {by} (now version {current.version}, you sent {expected}); reload and retry",
            current_version=current.version,
            changed_by=by,
        )
    case = session.get(Case, case_id)
    assert case is not None
    session.refresh(case)
    return case


@dataclass
class Change:
    """One audited change of one case, in progress (see the module docstring)."""

    session: Session
    case: Case
    actor: str
    action: str
    at: datetime
    before: dict[str, Any]
    entity: str = "case"
    _audit_before: dict[str, Any] | None = None
    _audit_after: dict[str, Any] | None = None
    _custom_audit: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # merged into the diff's `after` (e.g. a reason)
    _route_reason: str | None = None
    _route_on: Collection[str] | None = None

    def audit(self, *, after: dict[str, Any] | None = None, before: dict[str, Any] | None = None,
              action: str | None = None, entity: str | None = None) -> None:
        """Describe the change with these before/after instead of the case diff (and optionally rename it)."""
        self._custom_audit = True
        self._audit_before, self._audit_after = before, after
        if action is not None:
            self.action = action
        if entity is not None:
            self.entity = entity

    def reroute(self, reason: str, *, when_changed: Collection[str] | None = None) -> None:
        """Re-run the rules once at the end: always, or only when one of `when_changed` changed."""
        self._route_reason = reason
        self._route_on = when_changed


def _publish_events(ch: Change) -> None:
    case, before = ch.case, ch.before
    event = CaseEvent(session=ch.session, case=case, before=before, at=ch.at, actor=ch.actor)
    if case.stage != before["stage"]:
        publish(CaseEventName.STAGE_CHANGED, event)
    if bool(case.waiting_on_customer) != bool(before["waiting_on_customer"]):
        publish(CaseEventName.WAIT_CHANGED, event)


@contextmanager
def change(session: Session, case_id: int, version: int | None, actor: str, action: str, *,
           at: datetime | None = None, entity: str = "case") -> Iterator[Change]:
    """Claim, change, publish, audit once, re-route once (see the module docstring)."""
    case = _claim_version(session, case_id, version)
    ch = Change(session=session, case=case, actor=actor, action=action, at=at or now(), before=snapshot(case),
                entity=entity)
    yield ch
    _publish_events(ch)
    session.add(ch.case)
    session.flush()
    b, a = diff(ch.before, snapshot(ch.case))
    if ch._custom_audit:
        audit_before, audit_after = ch._audit_before, ch._audit_after
    else:
        audit_before, audit_after = b, {**a, **ch.extra}
    audit.record(session, actor=ch.actor, action=ch.action, case_id=case_id, entity=ch.entity, before=audit_before,
                 after=audit_after, at=at)
    if ch._route_reason is not None and (ch._route_on is None or set(ch._route_on) & set(a)):
        route_case(session, ch.case, actor=ch.actor, reason=ch._route_reason)
