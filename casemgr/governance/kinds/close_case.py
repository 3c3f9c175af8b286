"""close_case: move the case to a final stage."""

from __future__ import annotations

from typing import Any

from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import StageMove


@register
class CloseCase(StageMove):
    name = "close_case"
    rank = 7

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        bad = super().invalid(facts, value, output)
        if bad is None and value.get("to_stage") not in facts.final_stages:
            return f"{value.get('to_stage')!r} is not a closing stage"
        return bad

    def proposes(self, case: Any, to_stage: str, final: bool) -> bool:
        return final
