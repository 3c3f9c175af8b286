"""Background work in short write transactions (issue 23): a scan over a large table must not hold SQLite's single
writer (or long row locks on PostgreSQL) against intake.

Candidate ids are read by keyset, a page at a time, in short read sessions outside the write lock; each page is
then re-read and changed in write transactions that commit after `chunk` rows or after `TXN_BUDGET_S`, whichever
comes first, so a slow host shortens the transactions instead of lengthening them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from casemgr.db import read_session, write_session

# Wall time after which a chunk commits early (the bound is 50 ms; one more row may run past it).
TXN_BUDGET_S = 0.04


def keyset_pages(key: Any, where: list[Any], *, chunk: int, limit: int | None = None) -> Iterator[list[int]]:
    """Ids matching `where`, ascending, `chunk` at a time, each page read in its own short read session.

    Keyset by id (`key > last`): a page costs the same at the end of a million rows as at the start, and rows the
    caller changed between pages (no longer matching) do not shift the pages after them. Stops after `limit` ids.
    """
    last, seen = 0, 0
    while limit is None or seen < limit:
        size = chunk if limit is None else min(chunk, limit - seen)
        with read_session() as rs:
            ids = [int(i) for i in rs.execute(select(key).where(*where, key > last).order_by(key).limit(size)).scalars()]
        if not ids:
            return
        seen += len(ids)
        last = ids[-1]
        yield ids


def apply_in_transactions(ids: list[int], load: Callable[[Session, list[int]], list[Any]],
                          step: Callable[[Session, Any], None]) -> int:
    """Run `step` on the rows `load` re-reads for `ids` (under the write lock, so each row is checked as it is
    now), committing after TXN_BUDGET_S; returns how many write transactions were used."""
    pending, transactions = list(ids), 0
    while pending:
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
    return transactions


def _after(ids: list[int], row: Any) -> list[int]:
    last = int(getattr(row, "id", None) or row.case_id)
    return [i for i in ids if i > last]
