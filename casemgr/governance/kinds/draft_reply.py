"""draft_reply: a reply for the agent to edit and send; AI never sends one (the policy may at most suggest it).

The suggestion sits in the case page's reply box; sending the reply records the outcome with the edit distance
(casemgr.governance.draft_outcome). Accepting it from the suggestion list stores it as a note; nothing is sent."""

from __future__ import annotations

from typing import Any

from casemgr.cases.change import Change
from casemgr.cases.models import Note
from casemgr.governance.kinds import register
from casemgr.governance.kinds.base import DecisionKind, Value
from casemgr.limits import AI_TEXT_CHARS


class TextValue(Value):
    text: str


def invalid_text(value: dict[str, Any]) -> str | None:
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        return "no text"
    if len(text) > AI_TEXT_CHARS:
        return f"text longer than {AI_TEXT_CHARS} characters"
    return None


@register
class DraftReply(DecisionKind):
    name = "draft_reply"
    rank = 5
    value_schema = TextValue
    max_mode = "suggest"  # a human always sends replies

    def invalid(self, facts: Any, value: dict[str, Any], output: Any) -> str | None:
        return invalid_text(value)

    def write(self, ch: Change, field: str | None, value: dict[str, Any]) -> tuple[None, dict[str, Any]]:
        ch.session.add(Note(case_id=ch.case.id or 0, author=ch.actor, body=f"Draft reply (not sent):\n{value['text']}"))
        return None, {"note": "draft reply", "chars": len(value["text"])}
