"""classify: set the case's category, urgency or sentiment (the output names which, in `field`)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.enums import Sentiment, Urgency
from casemgr.cases.models import Case
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value

CLASSIFY_FIELDS = ("category", "urgency", "sentiment")


class ClassifyValue(Value):
    category: str | None = None
    urgency: str | None = None
    sentiment: str | None = None


@register
class Classify(DecisionKind):
    name = "classify"
    rank = 1
    value_schema = ClassifyValue
    uses_field = True
    revertible = True
    plain = True
    reroutes = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        f = output.field
        if f not in CLASSIFY_FIELDS:
            return f"classify cannot set field {f!r}"
        val = value.get(f)
        allowed = {"category": facts.categories, "urgency": Urgency.values(), "sentiment": Sentiment.values()}[f]
        if not allowed:
            return f"case type {facts.case_type} has no {f}"
        if val not in allowed:
            return f"{f} {val!r} is not one of {', '.join(allowed)}"
        return None

    def category(self, output: Any) -> str | None:
        if output.field == "category":
            return str(output.value.get("category") or "") or None
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {field: getattr(case, field)} if field else {}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        if not field:
            return
        from casemgr.cases import service as cases

        setattr(case, field, value.get(field))
        # A case type with a category field keeps it in step with the column.
        if field == "category" and "category" in {f.name for f in cases.case_type_def(case).fields}:
            fields = dict(case.fields or {})
            if value.get(field) is None:
                fields.pop("category", None)
            else:
                fields["category"] = value[field]
            case.fields = fields
