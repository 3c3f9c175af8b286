"""Background work in short write transactions (issue 23): a scan over a large table must not hold SQLite's single
writer (or long row locks on PostgreSQL) against intake.

Candidate ids are read outside the write lock, in short read sessions, from an index that serves the query
(`read_ids`: a bounded list in the index's order. Not a keyset by id: `WHERE ... AND id > :last ORDER BY id`
makes SQLite walk the primary key, reading every row of the table to find a few, unless one index serves both
the filter and the id order); each page of ids is then re-read and changed in write transactions that commit
after `chunk` rows or after `TXN_BUDGET_S`, whichever comes first, so a slow host shortens the transactions
instead of lengthening them.

Between two of those transactions the scan rests (casemgr/jobs/pacing.py, CASEMGR_BACKGROUND_DUTY). Back to back,
a 1M-case scan's few hundred chunks left the write lock free for microseconds at a time, and the app processes,
which wait for another process's lock by polling every few ms (casemgr/db.py), hardly ever caught it: API intake
waited up to 330 ms in BEGIN IMMEDIATE while the scan ran (issue 23's soak, minutes 1-3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlmodel import Session

from casemgr.db import read_session, write_session
from casemgr.jobs.pacing import rest_after

# Wall time after which a chunk commits early (the bound is 50 ms; one more row may run past it).
TXN_BUDGET_S = 0.04


def read_ids(query: Any) -> list[int]:
    """The ids `query` selects (one column), in its order, read in one short read session."""
    with read_session() as rs:
        return [int(i) for i in rs.execute(query).scalars()]


def in_pages(ids: list[int], chunk: int) -> Iterator[list[int]]:
    """`ids` (in the order read: the most urgent first) `chunk` at a time, each page ascending, as
    apply_in_transactions needs (its loads are in id order)."""
    for start in range(0, len(ids), chunk):
        yield sorted(ids[start:start + chunk])


def apply_in_transactions(ids: list[int], load: Callable[[Session, list[int]], list[Any]],
                          step: Callable[[Session, Any], None]) -> int:
    """Run `step` on the rows `load` re-reads for `ids` (under the write lock, so each row is checked as it is
    now), committing after TXN_BUDGET_S; returns how many write transactions were used."""
    pending, transactions = list(ids), 0
    while pending:
        began = time.monotonic()
        with write_session() as session:
            started = time.monotonic()
            rows = load(session, pending)
            done = 0
            for row in rows:
                step(session, row)
                done += 1
                if time.monotonic() - started > TXN_BUDGET_S:
                    break
            pending = [] if done == len(rows) else _after(pending, rows[done - 1])
        transactions += 1
        rest_after(time.monotonic() - began)  # the lock free for as long again (at duty 0.5): see the docstring
    return transactions


def _after(ids: list[int], row: Any) -> list[int]:
    last = int(getattr(row, "id", None) or row.case_id)
    return [i for i in ids if i > last]
