"""approve_contract: move a contract from approval to signature (limited by the policy's contract amount)."""

from __future__ import annotations

from typing import Any

from casemgr.casetypes.registry import extracts_contracts
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import StageMove


@register
class ApproveContract(StageMove):
    name = "approve_contract"
    rank = 9
    proposal_order = 0  # a narrower claim than close_case/advance_stage

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        bad = super().invalid(facts, value, output)
        if bad is None and not extracts_contracts(facts.case_type):
            return "only contract types (ai.extract_contract) can be approved"
        return bad

    def over_limit(self, policy: Any, facts: Any, output: Any) -> str | None:
        limit = policy.model.limits.max_contract_amount
        amount = facts.amount or 0.0
        if amount > limit:
            return f"contract value {amount:g} exceeds the AI limit {limit:g}"
        return None

    def proposes(self, case: Any, to_stage: str, final: bool) -> bool:
        return extracts_contracts(case.case_type) and case.stage == "approval" and to_stage == "signature"
