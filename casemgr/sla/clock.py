"""SLA due-time arithmetic on the business-hours calendar (policies/sla-calendar.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casemgr.sla.calendar import get_calendar


def due_at(start: datetime, hours: float, business_hours: bool = True) -> datetime:
    """`hours` of business time after `start` (wall-clock hours when business_hours is false)."""
    if not business_hours:
        return start + timedelta(hours=hours)
    due = get_calendar().add(start, hours * 3600.0)
    # Keep the caller's tz style: naive in, naive (UTC) out.
    return due.replace(tzinfo=None) if start.tzinfo is None else due.astimezone(UTC)


def business_hours_between(a: datetime, b: datetime) -> float:
    return get_calendar().business_seconds(a, b) / 3600.0
