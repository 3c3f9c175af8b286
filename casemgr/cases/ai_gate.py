"""AI facts cannot reach a case around the policy, not even through rules (issue 17).

A rule such as "urgency high -> priority high" turns an AI fact into a consequence. When the fact was set
by the AI (its provenance is on `case.ai["applied_facts"]` and the case still holds that value), the
consequence is bound by the policy's decision for the consequence's own kind (priority: set_priority):
below that kind's threshold, or where the policy only lets the AI suggest, routing leaves the field alone
and the consequence becomes a suggestion to the kind's owner.

Cases imports no governance: governance registers the gate through the one wiring list (casemgr.listeners).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session


@dataclass(frozen=True)
class GateVerdict:
    may_apply: bool
    reason: str
    threshold: float | None = None


# (case, kind, value, confidence) -> verdict, pure; (session, case, bound consequence) -> records the suggestion.
Gate = Callable[[Any, str, dict[str, Any], float], GateVerdict]
Recorder = Callable[[Session, Any, dict[str, Any]], None]
_gate: Gate | None = None
_recorder: Recorder | None = None


def register(gate: Gate, recorder: Recorder) -> None:
    global _gate, _recorder
    _gate, _recorder = gate, recorder


def ai_sourced_facts(case: Any) -> dict[str, float]:
    """Facts whose current value the AI set: field -> the confidence it was set with."""
    applied = ((getattr(case, "ai", None) or {}).get("applied_facts") or {})
    out: dict[str, float] = {}
    for name, info in applied.items():
        if isinstance(info, dict) and getattr(case, name, None) == info.get("value"):
            out[name] = float(info.get("confidence") or 0.0)
    return out


def bind(case: Any, decision: dict[str, Any], kind: str, rule_key: str, value: dict[str, Any]) -> dict[str, Any] | None:
    """None when the consequence may be applied; otherwise what was held back and why."""
    from casemgr.cases.events import ensure_wired

    rule = decision.get(rule_key)
    if not rule:
        return None
    fired = next((f for f in decision.get("fired") or [] if isinstance(f, dict) and f.get("rule") == rule), None)
    if fired is None:
        return None
    sourced = ai_sourced_facts(case)
    used = {k: sourced[k] for k in (fired.get("matched") or {}) if k in sourced}
    if not used:
        return None
    ensure_wired()
    if _gate is None:
        return None
    confidence = min(used.values())
    verdict = _gate(case, kind, value, confidence)
    if verdict.may_apply:
        return None
    return {"kind": kind, "value": value, "rule": rule, "ai_facts": used, "confidence": confidence,
            "threshold": verdict.threshold, "reason": verdict.reason}


def record(session: Session, case: Any, bound: dict[str, Any]) -> None:
    if _recorder is not None:
        _recorder(session, case, bound)
