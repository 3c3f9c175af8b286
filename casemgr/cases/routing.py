"""Apply a rules Decision to a case: queue, owner role, priority, SLA, tasks, with the explanation stored.

The rules room returns plain data (casemgr.rules.engine.evaluate); only this module writes it to the case.
If the rules room is unavailable the case falls back to its type's default queue, recorded as such.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.cases.models import Case, Task
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.sla.clock import due_at

log = logging.getLogger(__name__)

PRIORITY_ORDER = ["low", "normal", "high", "urgent"]


def _evaluate(case: Case) -> dict[str, Any]:
    try:
        from casemgr.rules.engine import evaluate
        from casemgr.rules.facts import facts_from_case
    except ImportError:
        return {"queue": None, "fired": [], "default_used": True, "ruleset_version": None, "fallback": "no rules engine"}
    decision = evaluate(facts_from_case(case))
    return decision.model_dump(mode="json") if hasattr(decision, "model_dump") else dict(decision)


def route_case(session: Session, case: Case, *, actor: str, reason: str) -> dict[str, Any]:
    """Evaluate the rules on the case's current facts and apply the decision, with one audit event."""
    if case.status == "closed":
        return {}
    try:
        decision = _evaluate(case)
    except Exception as exc:  # a broken engine must not lose the case: fall back to the default queue
        log.exception("rules evaluation failed for case %s", case.id)
        decision = {"queue": None, "fired": [], "default_used": True, "ruleset_version": None,
                    "fallback": f"rules error: {type(exc).__name__}: {exc}"}
    ct = get_registry().get(case.case_type)
    before = {k: getattr(case, k) for k in ("queue", "owner_role", "priority", "sla_due_at", "ruleset_version")}
    case.queue = decision.get("queue") or (case.queue if not decision.get("default_used") else ct.default_queue)
    if decision.get("owner_role"):
        case.owner_role = decision["owner_role"]
    prio = decision.get("priority")
    if prio in PRIORITY_ORDER:
        case.priority = prio
    sla_hours = decision.get("sla_hours")
    if sla_hours and case.sla_due_at is not None and not case.waiting_on_customer:
        # Rules may shorten the stage SLA, never silently extend it.
        # Same clock as the stage target: business hours unless the stage says otherwise (issue 8).
        sd = ct.stage(case.stage)
        candidate = due_at(case.stage_entered_at, float(sla_hours), sd.sla.business_hours if sd and sd.sla else True)
        if candidate < case.sla_due_at:
            case.sla_due_at = candidate
            case.sla_hours = float(sla_hours)
    opened = []
    existing = {
        t.name
        for t in session.execute(select(Task).where(Task.case_id == case.id, Task.status == "open")).scalars()
    }
    for t in decision.get("tasks") or []:
        name = t.get("name") if isinstance(t, dict) else str(t)
        if not name or name in existing:
            continue
        task = Task(
            case_id=case.id, name=name, kind=t.get("kind", "task") if isinstance(t, dict) else "task",
            stage=case.stage, role=t.get("role") if isinstance(t, dict) else None,
            sop=t.get("sop") if isinstance(t, dict) else None, source="rule", due_at=case.sla_due_at, created_at=now(),
        )
        session.add(task)
        existing.add(name)
        opened.append(name)
    case.rules_result = {**decision, "reason": reason, "evaluated_at": now().isoformat()}
    case.ruleset_version = decision.get("ruleset_version")
    session.add(case)
    session.flush()
    after = {k: getattr(case, k) for k in before}
    audit.record(
        session, actor=actor, action="case.routed", case_id=case.id, entity="case",
        before=before,
        after={**after, "fired": [f.get("rule") if isinstance(f, dict) else str(f) for f in decision.get("fired", [])],
               "tasks_opened": opened, "default_used": bool(decision.get("default_used")), "reason": reason},
    )
    return decision
