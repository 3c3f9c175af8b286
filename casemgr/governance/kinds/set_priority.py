"""set_priority: set the case's priority."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.enums import Priority
from casemgr.cases.models import Case
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


class PriorityValue(Value):
    priority: Priority


@register
class SetPriority(DecisionKind):
    name = "set_priority"
    rank = 2
    value_schema = PriorityValue
    case_field = "priority"
    revertible = True
    plain = True
    reroutes = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        if value.get("priority") not in Priority.values():
            return f"priority {value.get('priority')!r} is not one of {', '.join(Priority.values())}"
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {"priority": case.priority}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        case.priority = value["priority"]
