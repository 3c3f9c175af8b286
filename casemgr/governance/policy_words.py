"""A policy diff in words (issue 21): "classify: auto → suggest; threshold 0.6 → 0.7 for credit_reporting".

Input is lifecycle.diff()'s `changes` ({path, active, candidate} per changed setting, dotted paths of the
flattened policy); one phrase per change, grouped by decision kind, for people who do not read YAML.
"""

from __future__ import annotations

from typing import Any

ARROW = "→"
LABELS = {"mode": "", "owner": "owner", "threshold": "threshold", "below_threshold": "below the threshold",
          "description": "description"}


def _v(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _phrase(rest: list[str], old: Any, new: Any) -> str:
    move = f"{_v(old)} {ARROW} {_v(new)}"
    if not rest:
        return move
    head = rest[0]
    if head == "thresholds_by_category" and len(rest) > 1:
        return f"threshold {move} for {rest[1]}"
    if head == "thresholds_by_case_type" and len(rest) > 1:
        return f"threshold {move} for case type {rest[1]}"
    label = LABELS.get(head, head.replace("_", " "))
    return f"{label} {move}".strip()


def in_words(changes: list[dict[str, Any]]) -> list[str]:
    """One sentence per decision kind (its changes joined by '; ') and one per other setting."""
    by_kind: dict[str, list[str]] = {}
    other: list[str] = []
    for ch in changes:
        parts = str(ch["path"]).split(".")
        old, new = ch.get("active"), ch.get("candidate")
        if parts[0] == "decisions" and len(parts) > 1:
            by_kind.setdefault(parts[1], []).append(_phrase(parts[2:], old, new))
        else:
            other.append(f"{' '.join(p.replace('_', ' ') for p in parts)}: {_v(old)} {ARROW} {_v(new)}")
    return [f"{kind}: {'; '.join(ph)}" for kind, ph in sorted(by_kind.items())] + other
