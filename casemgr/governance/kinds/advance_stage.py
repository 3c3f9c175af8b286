"""advance_stage: move the case to a next, non-final stage (closing is close_case)."""

from __future__ import annotations

from typing import Any

from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import StageMove


@register
class AdvanceStage(StageMove):
    name = "advance_stage"
    rank = 12
    required = False

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        bad = super().invalid(facts, value, output)
        if bad is None and value.get("to_stage") in facts.final_stages:
            return "closing a case is the close_case decision"
        return bad

    def proposes(self, case: Any, to_stage: str, final: bool) -> bool:
        return not final
