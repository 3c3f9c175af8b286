"""How an SLA due time reads at render time: a relative countdown and a live state, from the due time and
the clock (never the sla_state a worker scan last stored), with the absolute time in the user's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casemgr.cases.enums import CaseStatus
from casemgr.clock import now

UTC = ZoneInfo("UTC")
AT_RISK_SHARE = 0.25  # under a quarter of the target left reads "at risk" even before the scan says so


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def span(seconds: float) -> str:
    """3 h 10 m, 2 d 4 h, 12 m: the two largest units, like helpdesk countdowns."""
    s = int(abs(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d} d {h} h" if h and d < 3 else f"{d} d"
    if h:
        return f"{h} h {m} m" if m else f"{h} h"
    return f"{max(m, 1)} m"


@dataclass(frozen=True)
class SlaView:
    state: str  # on_track | at_risk | breached | paused | none
    label: str  # "due in 3 h 10 m", "overdue 2 d", "paused", "no SLA"
    tooltip: str  # absolute due time in the user's zone
    iso: str


def sla_view(status: str, sla_state: str, due: datetime | None, sla_hours: float | None, tz: ZoneInfo,
             at: datetime | None = None) -> SlaView:
    if status != CaseStatus.OPEN:
        return SlaView("none", "closed", "", "")
    if sla_state == "paused":
        return SlaView("paused", "paused (waiting on customer)", "", "")
    if due is None:
        return SlaView("none", "no SLA", "", "")
    at = at or now()
    left = (due - at).total_seconds()
    local = due.astimezone(tz)
    tooltip = f"due {local:%a %d %b %Y %H:%M} {local.tzname()}"
    if left <= 0:
        return SlaView("breached", f"overdue {span(left)}", tooltip, due.isoformat())
    risky = sla_state == "at_risk" or (sla_hours is not None and left <= AT_RISK_SHARE * sla_hours * 3600)
    return SlaView("at_risk" if risky else "on_track", f"due in {span(left)}", tooltip, due.isoformat())
