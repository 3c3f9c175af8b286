"""The cases vocabulary (Dispatch style): values stored in case columns and accepted by the API.

StrEnum members compare and serialise as their plain strings, so rows, JSON and YAML data keep the strings.
"""

from __future__ import annotations

from enum import StrEnum


class _Values(StrEnum):
    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class CaseStatus(_Values):
    OPEN = "open"
    CLOSED = "closed"


class Priority(_Values):
    """Lowest first: escalation raises a case one step along this order."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def raised(self) -> Priority:
        order = list(Priority)
        return order[min(order.index(self) + 1, len(order) - 1)]


class TaskStatus(_Values):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"
