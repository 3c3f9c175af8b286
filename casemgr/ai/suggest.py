"""Next-step suggestion restricted to the actions the case type allows at the current stage.

The local provider scores each allowed action against what it can see (classification,
urgency, a few cues in the text). Whatever any provider proposes goes through
`enforce_allowed`, so an action that is not on the list can never come out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from casemgr.ai.schemas import Suggestion

AllowedActions = Sequence[str] | Mapping[str, str]

# Cue words on action names/descriptions -> situations in which that action fits.
_ACTION_CUES: dict[str, tuple[str, ...]] = {
    "escalate": ("escalat", "urgent", "supervisor", "legal", "review", "manager"),
    "request_info": ("request", "info", "ask", "clarif", "missing", "document", "more"),
    "assign": ("assign", "triage", "route", "classif", "queue", "accept", "start", "open"),
    "respond": ("respond", "reply", "answer", "acknowledg", "contact", "notify"),
    "resolve": ("resolve", "close", "complete", "done", "finish", "refund", "approve"),
    "reject": ("reject", "decline", "spam", "invalid", "duplicate"),
    "renew": ("renew", "extend", "remind"),
}


def _normalise_allowed(allowed: AllowedActions) -> dict[str, str]:
    if isinstance(allowed, Mapping):
        return {str(k): str(v or "") for k, v in allowed.items()}
    return {str(a): "" for a in allowed}


def enforce_allowed(s: Suggestion, allowed: AllowedActions) -> Suggestion:
    """Drop any action that is not exactly one of the allowed ones (case-insensitive match allowed)."""
    names = _normalise_allowed(allowed)
    if s.action is None:
        return s
    if s.action in names:
        return s
    by_lower = {n.lower(): n for n in names}
    if s.action.lower() in by_lower:
        return s.model_copy(update={"action": by_lower[s.action.lower()]})
    return Suggestion(action=None, rationale=f"proposed action {s.action!r} is not allowed here; ignored", confidence=0.0)


def _situations(text: str, category: str | None, urgency: str | None, facts_missing: bool) -> dict[str, float]:
    t = text.lower()
    w: dict[str, float] = {"assign": 1.0, "respond": 0.8}
    if urgency in ("high", "critical"):
        w["escalate"] = 2.0 if urgency == "critical" else 1.4
    if re.search(r"\b(lawyer|attorney|legal action|lawsuit|regulator|cfpb)\b", t):
        w["escalate"] = max(w.get("escalate", 0), 1.8)
    if facts_missing or len(t.split()) < 12:
        w["request_info"] = 1.3
    if re.search(r"\b(resolved|thank you for fixing|no longer needed|withdraw)\b", t):
        w["resolve"] = 1.5
    if re.search(r"\b(renew\w*|expir\w*)\b", t):
        w["renew"] = 1.2
    if category is None:
        w["assign"] = 1.2
    return w


def suggest_local(
    text: str,
    allowed: AllowedActions,
    *,
    category: str | None = None,
    urgency: str | None = None,
    facts_missing: bool = False,
) -> Suggestion:
    names = _normalise_allowed(allowed)
    if not names:
        return Suggestion(action=None, rationale="no action is allowed at this stage", confidence=0.0)
    weights = _situations(text, category, urgency, facts_missing)
    best: tuple[float, str, str] | None = None
    for name, desc in names.items():
        hay = f"{name} {desc}".lower().replace("_", " ")
        score, why = 0.0, ""
        for situation, cues in _ACTION_CUES.items():
            if situation in weights and any(c in hay for c in cues) and weights[situation] > score:
                score, why = weights[situation], situation
        if best is None or score > best[0]:
            best = (score, name, why)
    assert best is not None
    score, name, why = best
    reasons = {
        "escalate": f"urgency is {urgency or 'elevated'} or the sender mentions legal/regulatory steps",
        "request_info": "the request is short or key facts are missing",
        "assign": f"new request{f' classified as {category}' if category else ''} needs an owner",
        "respond": "the customer is waiting for an answer",
        "resolve": "the text says the matter is settled",
        "reject": "the request looks invalid",
        "renew": "the text is about renewal or expiry",
    }
    if score == 0.0:
        return Suggestion(action=name, rationale="no strong cue; first allowed action", confidence=0.3)
    conf = round(min(0.9, 0.35 + 0.25 * score), 3)
    return Suggestion(action=name, rationale=reasons.get(why, why), confidence=conf)
