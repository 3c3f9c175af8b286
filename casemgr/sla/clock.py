"""SLA due-time arithmetic. Wall-clock hours until the business-hours calendar lands (issue 8)."""

from __future__ import annotations

from datetime import datetime, timedelta


def due_at(start: datetime, hours: float, business_hours: bool = True) -> datetime:
    return start + timedelta(hours=hours)
