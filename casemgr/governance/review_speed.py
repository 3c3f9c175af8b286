"""Time spent per review item (issue 21, against automation bias, EU AI Act Art. 14(4)(b)).

The review page stamps each item with the server time it was shown (`shown_at`, epoch ms in the form); a
verdict records `ai.review_timing` {decision, verdict, seconds} in the same transaction. Per reviewer: items,
median seconds, and the share of accepts faster than QUICK_S seconds (a rubber-stamp signal on the dashboard).
The stamp comes back from the reviewer's own form, so it is a signal, not proof; it is clamped to 0..1 hour.
"""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.audit.models import AuditEvent
from casemgr.audit.service import record
from casemgr.clock import now

ACTION = "ai.review_timing"
QUICK_S = 5.0
MAX_S = 3600.0


def seconds_since(shown_at_ms: str | int | None) -> float | None:
    try:
        shown = int(shown_at_ms or 0)
    except (TypeError, ValueError):
        return None
    if shown <= 0:
        return None
    return round(min(MAX_S, max(0.0, now().timestamp() - shown / 1000)), 2)


def record_timing(session: Session, *, actor: str, decision_id: int, case_id: int | None, verdict: str,
                  seconds: float | None) -> None:
    if seconds is None:
        return
    record(session, actor=actor, action=ACTION, case_id=case_id, entity=f"ai_decision:{decision_id}",
           after={"verdict": verdict, "seconds": seconds})


def per_reviewer(session: Session, *, quick_s: float = QUICK_S, limit: int = 20_000) -> list[dict[str, Any]]:
    """[{reviewer, items, median_s, accepts, quick_accept_share}] from the latest `limit` timing events."""
    rows = session.execute(
        select(col(AuditEvent.actor), col(AuditEvent.after)).where(col(AuditEvent.action) == ACTION)
        .order_by(col(AuditEvent.seq).desc()).limit(limit)
    ).all()
    by: dict[str, list[tuple[str, float]]] = {}
    for actor, after in rows:
        if after and after.get("seconds") is not None:
            by.setdefault(str(actor), []).append((str(after.get("verdict")), float(after["seconds"])))
    out = []
    for actor in sorted(by):
        items = by[actor]
        accepts = [s for v, s in items if v == "accept"]
        out.append({"reviewer": actor, "items": len(items), "median_s": round(statistics.median(s for _, s in items), 1),
                    "accepts": len(accepts),
                    "quick_accept_share": round(sum(s < quick_s for s in accepts) / len(accepts), 3) if accepts else None,
                    "quick_s": quick_s})
    return out
