"""request_information: open a task to ask the customer for something."""

from __future__ import annotations

from typing import Any

from casemgr.cases.change import Change
from casemgr.cases.models import Task
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind
from casemgr.governance.kinds.draft_reply import TextValue, invalid_text
from casemgr.limits import TASK_NAME_CHARS


@register
class RequestInformation(DecisionKind):
    name = "request_information"
    rank = 6
    value_schema = TextValue

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        return invalid_text(value)

    def write(self, ch: Change, field: str | None, value: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        case = ch.case
        task = Task(case_id=case.id or 0, name=f"Request information: {value['text']}"[:TASK_NAME_CHARS],
                    stage=case.stage, role=None, source="ai", due_at=case.sla_due_at)
        ch.session.add(task)
        return None, {"task": task.name}
