"""extract_contract: store the AI's contract facts (parties, dates, clauses) on a contract case."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.models import Case
from casemgr.casetypes.registry import extracts_contracts
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value


@register
class ExtractContract(DecisionKind):
    name = "extract_contract"
    rank = 11
    required = False
    value_schema = Value  # casemgr.ai.schemas.ContractFacts, dumped (or {"contract": ...} when reverting)
    case_field = "contract"
    revertible = True
    plain = True
    reroutes = True

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        if not extracts_contracts(facts.case_type):
            return "contract extraction is not switched on for this case type (ai.extract_contract)"
        return None

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        return {"contract": case.contract}

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        case.contract = value.get("contract", value) if "contract" in value else value

    def audit_values(self, before: dict[str, Any] | None, after: dict[str, Any], case: Case
                     ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        # Keep audit events small: name the clauses, not the whole text.
        return ({"contract": before.get("contract")} if before else None,
                {"contract_clauses": sorted((case.contract or {}).get("clauses", {}) or {})})
