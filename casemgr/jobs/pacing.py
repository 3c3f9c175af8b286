"""Pacing of background catch-ups: a job that works through a backlog in chunks rests between them.

A catch-up (a full metrics rebuild, a first rollup after an import) is CPU work that nobody waits for, yet run
back to back its chunks took a core each on two workers (plus their database backends) for a minute at 100k cases
on PostgreSQL, and the queue page's p95 went from ~35 to ~59 ms meanwhile (issue 23's soak). Resting in
proportion to the work done caps a catch-up's share of the CPU at `CASEMGR_BACKGROUND_DUTY`, the way
PostgreSQL's vacuum_cost_delay paces autovacuum. Lowering the worker's OS priority instead would invert priorities
on SQLite: a niced worker preempted inside its write transaction holds the single writer lock longer.
The SLA and renewal scans rest the same way between their write transactions (casemgr/sla/chunks.py): on SQLite
that is also what leaves the single write lock free for the app processes' writers between two chunks.
AI enrichment is not paced: it has to keep up with intake (`ai_drain_per_s`).
"""

from __future__ import annotations

import time

# A rest never exceeds this, so a chunk that took long on a busy host does not stall the backlog for long.
MAX_REST_S = 1.0


def rest_after(spent_s: float, duty: float | None = None) -> float:
    """Sleep so that `spent_s` of work is `duty` of the elapsed time; returns the seconds slept."""
    if duty is None:
        from casemgr.config import get_settings

        duty = get_settings().background_duty
    if duty >= 1.0 or spent_s <= 0:
        return 0.0
    rest = min(spent_s * (1.0 - duty) / duty, MAX_REST_S)
    time.sleep(rest)
    return rest
