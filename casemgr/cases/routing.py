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
from casemgr.cases.enums import CaseStatus, Priority, TaskStatus
from casemgr.cases.models import Case, Task
from casemgr.casetypes.versions import case_type_of
from casemgr.clock import now
from casemgr.db import draft
from casemgr.sla.clock import due_at

log = logging.getLogger(__name__)

def _evaluate(case: Any) -> dict[str, Any]:
    try:
        from casemgr.rules.engine import evaluate
        from casemgr.rules.facts import facts_from_case
    except ImportError:
        return {"queue": None, "fired": [], "default_used": True, "ruleset_version": None, "fallback": "no rules engine"}
    decision = evaluate(facts_from_case(case))
    return decision.model_dump(mode="json") if hasattr(decision, "model_dump") else dict(decision)


ROUTED_FIELDS = ("queue", "owner_role", "priority", "sla_due_at", "ruleset_version")


def evaluate_rules(case: Any) -> dict[str, Any]:
    """The rules decision for the case's current facts; a broken engine yields the type's default queue."""
    try:
        return _evaluate(case)
    except Exception as exc:  # a broken engine must not lose the case: fall back to the default queue
        log.exception("rules evaluation failed for case %s", case.id)
        return {"queue": None, "fired": [], "default_used": True, "ruleset_version": None,
                "fallback": f"rules error: {type(exc).__name__}: {exc}"}


def apply_decision(
    case: Any, decision: dict[str, Any], open_task_names: set[str], *, reason: str,
) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Write the decision onto the case (a Case or a draft, in memory): returns drafts of the tasks to open and
    the audit event's before/after."""
    ct = case_type_of(case)
    before = {k: getattr(case, k) for k in ROUTED_FIELDS}
    case.queue = decision.get("queue") or (case.queue if not decision.get("default_used") else ct.default_queue)
    if decision.get("owner_role"):
        case.owner_role = decision["owner_role"]
    prio = decision.get("priority")
    bound: list[dict[str, Any]] = []
    if prio in Priority.values() and prio != case.priority:
        from casemgr.cases.ai_gate import bind

        held = bind(case, decision, "set_priority", "priority_rule", {"priority": prio})
        if held is None:
            case.priority = prio
        else:
            bound.append(held)
    sla_hours = decision.get("sla_hours")
    if sla_hours and case.sla_due_at is not None and not case.waiting_on_customer:
        # Rules may shorten the stage SLA, never silently extend it.
        # Same clock as the stage target: business hours unless the stage says otherwise (issue 8).
        sd = ct.stage(case.stage)
        candidate = due_at(case.stage_entered_at, float(sla_hours), sd.sla.business_hours if sd and sd.sla else True)
        if candidate < case.sla_due_at:
            case.sla_due_at = candidate
            case.sla_hours = float(sla_hours)
    t = now()
    tasks: list[Any] = []
    existing = set(open_task_names)
    for spec in decision.get("tasks") or []:
        name = spec.get("name") if isinstance(spec, dict) else str(spec)
        if not name or name in existing:
            continue
        tasks.append(draft(
            Task, case_id=case.id, name=name, kind=spec.get("kind", "task") if isinstance(spec, dict) else "task",
            stage=case.stage, role=spec.get("role") if isinstance(spec, dict) else None,
            sop=spec.get("sop") if isinstance(spec, dict) else None, source="rule", due_at=case.sla_due_at,
            created_at=t,
        ))
        existing.add(name)
    case.rules_result = {**decision, "reason": reason, "evaluated_at": t.isoformat(), "bound_by_policy": bound}
    case.ruleset_version = decision.get("ruleset_version")
    after = {k: getattr(case, k) for k in ROUTED_FIELDS}
    after = {**after, "fired": [f.get("rule") if isinstance(f, dict) else str(f) for f in decision.get("fired", [])],
             "tasks_opened": [task.name for task in tasks], "default_used": bool(decision.get("default_used")),
             "reason": reason, **({"bound_by_policy": bound} if bound else {})}
    return tasks, before, after


def route_case(session: Session, case: Case, *, actor: str, reason: str) -> dict[str, Any]:
    """Evaluate the rules on the case's current facts and apply the decision, with one audit event."""
    if case.status == CaseStatus.CLOSED:
        return {}
    decision = evaluate_rules(case)
    open_names = set(session.execute(select(Task.name).where(Task.case_id == case.id, Task.status == TaskStatus.OPEN)).scalars())
    tasks, before, after = apply_decision(case, decision, open_names, reason=reason)
    session.add_all(Task(**vars(t)) for t in tasks)
    session.add(case)
    session.flush()
    audit.record(session, actor=actor, action="case.routed", case_id=case.id, entity="case", before=before,
                 after=after)
    if after.get("bound_by_policy"):
        from casemgr.cases.ai_gate import record

        for held in after["bound_by_policy"]:
            record(session, case, held)  # the held-back consequence goes to its owner as a suggestion
    return decision
