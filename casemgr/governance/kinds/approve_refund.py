"""approve_refund: record an approved refund amount on the case (limited by the policy's refund amount)."""

from __future__ import annotations

from typing import Any

from casemgr.cases.change import Change
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class RefundValue(Value):
    amount: float


@register
class ApproveRefund(DecisionKind):
    name = "approve_refund"
    rank = 8
    value_schema = RefundValue

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        amount = _num(value.get("amount"))
        if amount is None or amount <= 0:
            return "refund amount missing or not positive"
        return None

    def over_limit(self, policy: Any, facts: Any, output: Any) -> str | None:
        limit = policy.model.limits.max_refund_amount
        amount = _num(output.value.get("amount")) or 0.0
        if amount > limit:
            return f"refund {amount:g} exceeds the AI limit {limit:g}"
        return None

    def write(self, ch: Change, field: str | None, value: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        amount = float(value["amount"])
        ch.case.ai = {**(ch.case.ai or {}), "approved_refund": {"amount": amount, "by": ch.actor,
                                                                "at": ch.at.isoformat()}}
        return None, {"approved_refund": amount}
