"""The cases vocabulary (Dispatch style): values stored in case columns and accepted by the API.

StrEnum members compare and serialise as their plain strings, so rows, JSON and YAML data keep the strings.
"""

from __future__ import annotations

from enum import StrEnum

_VALUES: dict[type, tuple[str, ...]] = {}


class Values(StrEnum):
    """A StrEnum that lists its values (for messages and Literal-like checks)."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        # Remembered per class: iterating an enum's members costs microseconds, and routing and every AI decision
        # ask on the hot path (issue 23 profile: 3 % of the AI drain). The members of an enum never change.
        try:
            return _VALUES[cls]
        except KeyError:
            return _VALUES.setdefault(cls, tuple(m.value for m in cls))


class CaseStatus(Values):
    OPEN = "open"
    CLOSED = "closed"


class Priority(Values):
    """Lowest first: escalation raises a case one step along this order."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def raised(self) -> Priority:
        order = list(Priority)
        return order[min(order.index(self) + 1, len(order) - 1)]


class Urgency(Values):
    """How urgent the customer's matter reads (AI classification, rules fact); maps onto a priority."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def priority(self) -> Priority:
        return Priority.URGENT if self is Urgency.CRITICAL else Priority(self.value)


class Sentiment(Values):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class TaskStatus(Values):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"
