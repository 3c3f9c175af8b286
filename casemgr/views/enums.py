from enum import StrEnum


class SortKey(StrEnum):
    """Queue sort orders; each one is read in index order (see views.listing)."""

    SLA = "sla"  # SLA due soonest first, cases without a due time last
    PRIORITY = "priority"  # urgent first, then by SLA due
    UPDATED = "updated"  # most recently updated first
    CREATED = "created"  # newest first


class DefaultView(StrEnum):
    NEW = "new"  # open and unassigned
    MINE = "mine"  # open and assigned to me
    WAITING = "waiting"  # open and waiting on the customer
    DUE_TODAY = "due_today"  # open, due before the end of my day, not yet breached
    BREACHED = "breached"  # open and past the due time (read from the due time, never from a stale scan)
    ALL = "all"  # every open case
