"""assign: give the case to a named user (the same lookup as a person's assignment)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases import service as cases
from casemgr.cases.models import Case
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


class AssignValue(Value):
    assignee: str | None


@register
class Assign(DecisionKind):
    name = "assign"
    rank = 4
    value_schema = AssignValue
    case_field = "assignee"
    revertible = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        if not isinstance(value.get("assignee"), str) or not value["assignee"].strip():
            return "no assignee named"
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {"assignee": cases.assignee_name(session, case)}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        case.assignee_id = cases.resolve_assignee(session, value.get("assignee"))
