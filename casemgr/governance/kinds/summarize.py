"""summarize: store the AI's summary (and key facts) on the case."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.models import Case
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


class SummaryValue(Value):
    summary: str | None
    key_facts: dict[str, Any] | None = None


@register
class Summarize(DecisionKind):
    name = "summarize"
    rank = 10
    required = False
    value_schema = SummaryValue
    case_field = "ai.summary"
    revertible = True
    plain = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        if not isinstance(value.get("summary"), str):
            return "no summary text"
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {"summary": (case.ai or {}).get("summary")}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        ai = dict(case.ai or {})
        if value.get("summary") is None:  # reverting to "no summary"
            ai.pop("summary", None)
            ai.pop("key_facts", None)
        else:
            ai["summary"] = value["summary"]
            if value.get("key_facts") is not None:
                ai["key_facts"] = value["key_facts"]
        case.ai = ai
