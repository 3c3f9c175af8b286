"""The business-hours calendar of policies/sla-calendar.yaml, and the SLA policy that lives with it.

Arithmetic is done on UTC instants; each working day's window is built in the calendar's time zone and
converted to UTC, so a daylight-saving change moves the window, never the length of an hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from casemgr import runtime
from casemgr.config import get_settings
from casemgr.policyfile import PolicyFileError, Problem, load_yaml_file, validate

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Action = Literal["notify_lead", "raise_priority", "move_to_queue"]
MAX_DAYS = 3700  # a target never needs more than ten years of calendar; guards a calendar with no working time


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Hours(Strict):
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Hours:
        if self.end <= self.start:
            raise ValueError("hours.end must be after hours.start")
        return self


class Escalation(Strict):
    actions: list[Action] = Field(default_factory=lambda: ["notify_lead"])
    repeat_every_hours: float = Field(default=4, gt=0)
    queue: str = "escalations"


class EscalationOverride(Strict):
    case_type: str
    stage: str | None = None
    actions: list[Action] | None = None
    repeat_every_hours: float | None = Field(default=None, gt=0)
    queue: str | None = None


class EscalationPolicy(Strict):
    default: Escalation = Field(default_factory=Escalation)
    overrides: list[EscalationOverride] = Field(default_factory=list)


class Renewals(Strict):
    remind_days_before_notice: int = Field(default=30, ge=0, le=3650)
    role: str = "agent"
    default_notice_days: int = Field(default=30, ge=0, le=3650)


class Scheduler(Strict):
    sla_scan_every_s: float = Field(default=60, gt=0)
    renewal_scan_every_s: float = Field(default=3600, gt=0)
    metrics_refresh_every_s: float = Field(default=300, gt=0)


class SlaCalendarFile(Strict):
    timezone: str = "UTC"
    working_days: list[Weekday] = Field(min_length=1)
    hours: Hours
    holidays: list[date] = Field(default_factory=list)
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)
    renewals: Renewals = Field(default_factory=Renewals)
    scheduler: Scheduler = Field(default_factory=Scheduler)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _utc(dt: datetime) -> datetime:
    # Naive values come from SQLite columns written as UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class BusinessCalendar:
    """Working windows per day; `due_at` adds business time, `business_seconds` measures it."""

    def __init__(self, spec: SlaCalendarFile) -> None:
        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self.working = frozenset(WEEKDAYS.index(d) for d in spec.working_days)
        self.holidays = frozenset(spec.holidays)
        self.window = lru_cache(maxsize=4096)(self._window)

    def _window(self, d: date) -> tuple[datetime, datetime] | None:
        if d.weekday() not in self.working or d in self.holidays:
            return None
        start = datetime.combine(d, self.spec.hours.start, tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(d, self.spec.hours.end, tzinfo=self.tz).astimezone(UTC)
        return start, end

    def is_business_time(self, at: datetime) -> bool:
        at = _utc(at)
        w = self.window(at.astimezone(self.tz).date())
        return w is not None and w[0] <= at < w[1]

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant `seconds` of business time after `start` (a target ending at close is due at close)."""
        t = _utc(start)
        remaining = float(seconds)
        if remaining <= 0:
            return t
        d = t.astimezone(self.tz).date()
        for _ in range(MAX_DAYS):
            w = self.window(d)
            if w is not None:
                s, e = w
                if t < s:
                    t = s
                if t < e:
                    avail = (e - t).total_seconds()
                    if remaining <= avail:
                        return t + timedelta(seconds=remaining)
                    remaining -= avail
            d += timedelta(days=1)
        raise ValueError("the SLA calendar has no working time in the next ten years")

    def business_seconds(self, a: datetime, b: datetime) -> float:
        """Business time from a to b; negative when b is before a."""
        a, b = _utc(a), _utc(b)
        if b < a:
            return -self.business_seconds(b, a)
        total = 0.0
        d = a.astimezone(self.tz).date()
        last = b.astimezone(self.tz).date()
        while d <= last:
            w = self.window(d)
            if w is not None:
                s, e = max(w[0], a), min(w[1], b)
                if e > s:
                    total += (e - s).total_seconds()
            d += timedelta(days=1)
        return total

    # ------------------------------------------------------------ policy lookups

    def escalation_for(self, case_type: str, stage: str) -> Escalation:
        base = self.spec.escalation.default
        best: EscalationOverride | None = None
        for o in self.spec.escalation.overrides:
            if o.case_type == case_type and o.stage in (None, stage):
                if best is None or (o.stage is not None and best.stage is None):
                    best = o
        if best is None:
            return base
        return Escalation(
            actions=best.actions if best.actions is not None else base.actions,
            repeat_every_hours=best.repeat_every_hours or base.repeat_every_hours,
            queue=best.queue or base.queue,
        )


def _cross_check(loaded, spec: SlaCalendarFile) -> list[Problem]:  # type: ignore[no-untyped-def]
    from casemgr.casetypes.registry import get_registry

    problems: list[Problem] = []
    try:
        registry = get_registry()
    except PolicyFileError:
        return problems  # the case-types file reports its own problems
    queues, roles = registry.org.queue_names, registry.org.role_names
    if spec.escalation.default.queue not in queues:
        problems.append(Problem(loaded.file, loaded.line_of(("escalation", "default", "queue")),
                                f"unknown queue {spec.escalation.default.queue!r}"))
    for i, o in enumerate(spec.escalation.overrides):
        loc = ("escalation", "overrides", i)
        if o.case_type not in registry.case_types:
            problems.append(Problem(loaded.file, loaded.line_of(loc + ("case_type",)), f"unknown case type {o.case_type!r}"))
        elif o.stage and registry.case_types[o.case_type].stage(o.stage) is None:
            problems.append(Problem(loaded.file, loaded.line_of(loc + ("stage",)),
                                    f"unknown stage {o.stage!r} for case type {o.case_type}"))
        if o.queue and o.queue not in queues:
            problems.append(Problem(loaded.file, loaded.line_of(loc + ("queue",)), f"unknown queue {o.queue!r}"))
    if spec.renewals.role not in roles:
        problems.append(Problem(loaded.file, loaded.line_of(("renewals", "role")), f"unknown role {spec.renewals.role!r}"))
    return problems


def load_calendar(path: Path | None = None) -> BusinessCalendar:
    path = path or get_settings().policies_dir / "sla-calendar.yaml"
    loaded = load_yaml_file(path)
    spec = validate(loaded, SlaCalendarFile)
    problems = _cross_check(loaded, spec)
    if problems:
        raise PolicyFileError(problems)
    return BusinessCalendar(spec)


def get_calendar() -> BusinessCalendar:
    """The calendar of the configured policies dir, loaded once per context (casemgr.runtime.Runtime.calendar)."""
    return runtime.current().calendar
