"""Contract urgency from dates, not words (issue 17).

A contract is urgent when something must be done soon: it expires, or the last day to stop an automatic
renewal comes, within the case type's horizon. The evidence names the date and how far away it is.
Confidence is high when the dates were read from the contract and lower when the notice period is the
calendar's default, because then the deadline is an assumption.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from casemgr.ai.schemas import Scored


def contract_urgency(renewal: dict[str, Any] | None, today: date, *, horizon_days: int, critical_days: int) -> Scored:
    """`renewal` is casemgr.sla.renewals.compute()'s result (None when no expiry date is known)."""
    if not renewal:
        return Scored(label="normal", confidence=0.3, evidence=["no expiry date found"])
    candidates: list[tuple[int, str]] = []
    for key, what in (("notice_deadline", "renewal notice deadline"), ("expiration_date", "expiry")):
        value = renewal.get(key)
        if not value:
            continue
        try:
            days = (date.fromisoformat(str(value)[:10]) - today).days
        except ValueError:
            continue
        if key == "notice_deadline" and not renewal.get("auto_renews") and days < 0:
            continue  # a contract that does not renew by itself has no notice to miss
        when = f"in {days} days" if days >= 0 else f"passed {-days} days ago"
        candidates.append((days, f"{what} {value} ({when})"))
    if not candidates:
        return Scored(label="normal", confidence=0.3, evidence=["no usable dates"])
    upcoming = [c for c in candidates if c[0] >= 0]
    days, why = min(upcoming) if upcoming else max(candidates)
    confidence = 0.9 if renewal.get("notice_known", True) else 0.7
    if 0 <= days <= critical_days:
        return Scored(label="critical", confidence=confidence, evidence=[why])
    if 0 <= days <= horizon_days:
        return Scored(label="high", confidence=confidence, evidence=[why])
    if days < 0:
        return Scored(label="normal", confidence=0.6, evidence=[why])
    return Scored(label="low", confidence=confidence, evidence=[why])
