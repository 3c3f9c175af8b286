"""route_queue: put the case in another queue (its owner role follows the queue unless the value names one)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


class QueueValue(Value):
    queue: str
    owner_role: str | None = None


@register
class RouteQueue(DecisionKind):
    name = "route_queue"
    rank = 3
    value_schema = QueueValue
    case_field = "queue"
    revertible = True
    reroutes = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        if value.get("queue") not in facts.queues:
            return f"unknown queue {value.get('queue')!r}"
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {"queue": case.queue, "owner_role": case.owner_role}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        case.queue = value["queue"]
        owners = {q.name: q.owner_role for q in get_registry().org.queues}
        case.owner_role = value.get("owner_role") or owners.get(case.queue, case.owner_role)
