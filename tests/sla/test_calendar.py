"""Business-hours arithmetic: weekends, holidays, opening hours, daylight saving, validation of the file."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casemgr.policyfile import PolicyFileError
from casemgr.sla.calendar import get_calendar, load_calendar
from casemgr.sla.clock import business_hours_between, due_at


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (utc(2026, 11, 30, 9), 8, utc(2026, 11, 30, 17)),  # a full Monday ends at close, not next morning
        (utc(2026, 11, 27, 16), 4, utc(2026, 11, 30, 12)),  # Friday 16:00 + 4h -> Monday 12:00 (weekend skipped)
        (utc(2026, 11, 28, 10), 1, utc(2026, 11, 30, 10)),  # Saturday start counts from Monday opening
        (utc(2026, 11, 30, 7), 2, utc(2026, 11, 30, 11)),  # before opening
        (utc(2026, 11, 30, 18), 2, utc(2026, 12, 1, 11)),  # after closing
        (utc(2026, 12, 24, 16), 8, utc(2026, 12, 29, 16)),  # Christmas + weekend + boxing-day substitute
        (utc(2026, 11, 30, 9), 40, utc(2026, 12, 4, 17)),  # a business week
        # Daylight saving starts Sunday 29 March 2026: Monday opens at 09:00 BST = 08:00 UTC.
        (utc(2026, 3, 27, 16), 2, utc(2026, 3, 30, 9)),
    ],
)
def test_due_at_counts_business_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert due_at(start, hours) == expected
    assert business_hours_between(start, expected) == pytest.approx(hours)


def test_wall_clock_targets_ignore_the_calendar() -> None:
    assert due_at(utc(2026, 11, 27, 16), 4, business_hours=False) == utc(2026, 11, 27, 20)


def test_naive_datetimes_are_read_as_utc() -> None:
    assert due_at(datetime(2026, 11, 27, 16), 4) == datetime(2026, 11, 30, 12)


def test_business_time_round_trips_for_random_starts() -> None:
    rng = random.Random(7)
    cal = get_calendar()
    for _ in range(300):
        start = utc(2026, 1, 1) + timedelta(minutes=rng.randint(0, 700 * 24 * 60))
        hours = rng.choice([0.5, 1, 4, 8, 16, 40, 80, 200])
        due = cal.add(start, hours * 3600)
        assert cal.business_seconds(start, due) == pytest.approx(hours * 3600)
        assert cal.is_business_time(due - timedelta(seconds=1))
        assert cal.business_seconds(due, start) == pytest.approx(-hours * 3600)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sla-calendar.yaml"
    p.write_text(text)
    return p


def test_invalid_calendar_is_refused_with_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "timezone: Mars/Olympus\nworking_days: [mon]\nhours: {start: '09:00', end: '17:00'}\n")
    with pytest.raises(PolicyFileError) as e:
        load_calendar(p)
    assert "sla-calendar.yaml:1" in str(e.value) and "Mars/Olympus" in str(e.value)
    p = _write(tmp_path, "working_days: [mon, funday]\nhours: {start: '09:00', end: '17:00'}\n")
    with pytest.raises(PolicyFileError) as e:
        load_calendar(p)
    assert "sla-calendar.yaml:1" in str(e.value)
    p = _write(tmp_path, "working_days: [mon]\nhours: {start: '17:00', end: '09:00'}\n")
    with pytest.raises(PolicyFileError, match="end must be after"):
        load_calendar(p)
    p = _write(tmp_path, "working_days: [mon]\nhours: {start: '09:00', end: '17:00'}\n"
                         "escalation:\n  default: {queue: nowhere}\n")
    with pytest.raises(PolicyFileError) as e:
        load_calendar(p)
    assert "sla-calendar.yaml:4" in str(e.value) and "nowhere" in str(e.value)


def test_other_time_zone_and_working_week(tmp_path: Path) -> None:
    cal = load_calendar(_write(tmp_path, "timezone: America/New_York\nworking_days: [sun, mon, tue, wed, thu]\n"
                                         "hours: {start: '08:00', end: '12:00'}\nholidays: [2026-11-26]\n"))
    # Wednesday 25 Nov 2026, 11:00 EST = 16:00 UTC; 1h left Wed, Thu is a holiday, Fri/Sat off, Sunday 08:00 EST.
    assert cal.add(utc(2026, 11, 25, 16), 3 * 3600) == utc(2026, 11, 29, 15)
