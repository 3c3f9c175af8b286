"""Render a macro for a case (preview) and apply it: field changes, tasks and the optional transition as ONE
audited case change under the version the agent read; the (edited) reply then goes out in the same
transaction, claiming the version the macro produced, so nothing can slip in between."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from casemgr.cases import resolution
from casemgr.cases import service as cases
from casemgr.cases.change import FACT_FIELDS, change
from casemgr.cases.models import Case, Party, Task
from casemgr.clock import now
from casemgr.errors import NotFound, ValidationFailed
from casemgr.macros import render
from casemgr.macros.loader import get_macros
from casemgr.macros.schema import Macro
from casemgr.users.models import User
from casemgr.users.service import Principal


def get_macro(name: str) -> Macro:
    m = get_macros().get(name)
    if m is None:
        raise NotFound(f"macro {name!r} not found; macros: {', '.join(sorted(get_macros())) or '(none)'}")
    return m


def for_case(case: Case) -> list[Macro]:
    """Macros that fit this case's type and stage (open cases only)."""
    if case.status != "open":
        return []
    return [m for m in get_macros().values()
            if case.case_type in m.case_types and (not m.stages or case.stage in m.stages)]


def context(session: Session, case: Case, who: Principal) -> dict[str, Any]:
    party = session.get(Party, case.party_id) if case.party_id else None
    name = (party.name if party and party.name else None) or "customer"
    agent = session.get(User, who.user_id) if who.user_id else None
    return {
        "case": {"reference": case.reference, "subject": case.subject, "stage": case.stage, "priority": case.priority,
                 "queue": case.queue, "category": case.category, "amount": case.amount, "case_type": case.case_type,
                 "created": f"{case.created_at:%d %B %Y}"},
        "fields": dict(case.fields or {}),
        "customer_name": name, "customer_first_name": name.split()[0] if name != "customer" else "customer",
        "customer_email": party.email if party else None,
        "agent_name": (agent.display_name if agent and agent.display_name else who.username),
        "due": f"{case.sla_due_at:%d %B %Y}" if case.sla_due_at else None,
        "today": f"{now():%d %B %Y}",
    }


@dataclass
class Preview:
    macro: Macro
    reply: str
    changes: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    transition: str | None = None


def preview(session: Session, case_id: int, name: str, who: Principal) -> Preview:
    case = cases.get_case(session, case_id)
    m = get_macro(name)
    _check_fits(case, m)
    reply = render.render(m.reply, context(session, case, who)) if m.reply.strip() else ""
    return Preview(m, reply, m.set.model_dump(exclude_none=True, exclude_defaults=True), [t.name for t in m.tasks],
                   m.transition)


def _check_fits(case: Case, m: Macro) -> None:
    if case.case_type not in m.case_types:
        raise ValidationFailed(f"macro {m.name!r} is for {', '.join(m.case_types)}, not a {case.case_type}")
    if case.status != "open":
        raise ValidationFailed(f"{case.reference} is closed; macros apply to open cases")
    if m.stages and case.stage not in m.stages:
        raise ValidationFailed(f"macro {m.name!r} applies in stages {', '.join(m.stages)}, not {case.stage!r}")
    if m.transition:
        ct = cases.check_transition(case, m.transition)
        resolution.require(ct, case, m.transition, resolution.check_code(ct, m.resolution_code, m.transition))


def apply(session: Session, case_id: int, name: str, version: int, who: Principal,
          reply: str | None = None) -> tuple[Case, Preview, Any]:
    """Apply the macro (one audited change, 409 on a stale version); send `reply` (the agent's edited text, or
    the rendered one when None; "" sends nothing). Returns (case, preview, the queued message or None)."""
    pv = preview(session, case_id, name, who)
    m = pv.macro
    text = pv.reply if reply is None else reply
    with change(session, case_id, version, who.actor, "macro.applied") as ch:
        case = ch.case
        ct = cases.case_type_def(case)
        s = m.set
        if s.fields:
            case.fields = {**case.fields, **cases.validate_fields(ct, s.fields, partial=True)}
            for mirrored in cases.MIRRORED_FIELDS:
                if mirrored in s.fields:
                    setattr(case, mirrored, case.fields[mirrored])
        for key in ("priority", "urgency", "queue", "waiting_on_customer"):
            value = getattr(s, key)
            if value is not None:
                setattr(case, key, value)
        for t in m.tasks:
            session.add(Task(case_id=case.id or 0, name=t.name, role=t.role, stage=case.stage, source="user",
                             due_at=now() + timedelta(hours=t.due_hours) if t.due_hours else None))
        if m.transition:
            if m.resolution_code:  # checked by _check_fits; recorded in this change's audit event
                cases.set_resolution_code(ch, m.resolution_code)
            cases.move_stage(ch, m.transition)  # re-routes for the new stage
        elif s.queue is None:  # a macro that names a queue means it: no re-route over it
            ch.reroute("macro changed facts", when_changed=FACT_FIELDS)
        ch.extra.update({"macro": m.name, "tasks": pv.tasks, "reply": bool(text and text.strip())})
    message = None
    if text and text.strip():
        from casemgr.intake.outbound import send_reply

        message = send_reply(session, case_id, text, who.actor, version=ch.case.version)
    return ch.case, pv, message
