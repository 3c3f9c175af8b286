"""The scans read their candidates through indexes (issue 23): a pass costs what it finds, not the table.

Every SELECT that the chunked SLA and renewal scans run on SQLite is explained. No plan may scan `cases` or
`sla_timers`, nor walk their primary key (`rowid>?`): a keyset by id whose filter no index serves in id order read
~30 big case rows per renewal candidate at 1M cases (14 ms CPU per page of 25), and read the whole table every
minute when no SLA was due. Loads of known ids (`rowid=?`) are fine.

SQLite plans by its statistics, so each test runs twice: with none (a database nobody ran ANALYZE on) and with the
`sqlite_stat1` rows of the 1M-case bench database (`casemgr bench` loaders run ANALYZE), under which the old
renewal keyset walked the primary key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from sqlalchemy import event, text

from casemgr.db import dispose_engines, get_engine, read_session, write_session
from casemgr.sla import engine, renewals
from tests.sla.test_engine import _create
from tests.sla.test_renewals import _active_contract

pytestmark = pytest.mark.sqlite_only


# sqlite_stat1 of `cases` in the 1M-case bench database (ANALYZE after `casemgr bench soak --cases 1000000`).
STATS_1M = {
    "ix_cases_type_code_closed": "1000000 500000 500000 2", "ix_cases_party_created": "1000000 1000000 1 1",
    "ix_cases_type_version": "1000000 1000000 500000 1", "ix_cases_status_waiting_due": "1000000 500000 500000 15 1",
    "ix_cases_status_updated": "1000000 500000 1 1", "ix_cases_status_queue_due": "1000000 500000 22728 13 1",
    "ix_cases_status_priority_due": "1000000 500000 125000 14 1",
    "ix_cases_status_assignee_due": "1000000 500000 500000 15 1", "ix_cases_sla_state_due": "1000000 333334 15",
    "ix_cases_type_stage_due": "1000000 500000 71429 14 1", "ix_cases_status_due": "1000000 500000 15 1",
    "ix_cases_queue_due": "1000000 45455 13 1", "ix_cases_created": "1000000 1",
    "ix_cases_assignee_due": "1000000 1000000 15 1", "sqlite_autoindex_cases_1": "1000000 1",
}


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.fixture(params=["no statistics", "1M statistics"])
def statistics(request: pytest.FixtureRequest) -> str:
    """Plans as SQLite makes them without statistics, or as at 1M cases (connections opened afterwards load them)."""
    if request.param == "1M statistics":
        with write_session() as s:
            s.execute(text("ANALYZE"))
            s.execute(text("DELETE FROM sqlite_stat1 WHERE tbl = 'cases'"))
            for idx, stat in STATS_1M.items():
                s.execute(text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cases', :i, :s)"),
                          {"i": idx, "s": stat})
        dispose_engines()
    return str(request.param)


@contextmanager
def selects() -> Iterator[list[tuple[str, Any]]]:
    """The SELECT statements (with their parameters) run on either engine while the block runs."""
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engines = [get_engine(write=False), get_engine(write=True)]
    for eng in engines:
        event.listen(eng, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        for eng in engines:
            event.remove(eng, "before_cursor_execute", before)


def table_walks(statements: list[tuple[str, Any]]) -> list[str]:
    """The plan lines that read `cases` or `sla_timers` other than through an index range or by id."""
    bad = []
    with read_session() as s:
        conn = s.connection()
        for sql, params in statements:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all():
                detail = str(row[-1])
                if any(f"{verb} {t}" in detail for verb in ("SCAN", "SEARCH") for t in ("cases", "sla_timers")) and (
                        detail.startswith("SCAN") or "rowid>" in detail or "rowid<" in detail):
                    bad.append(f"{detail}  <-  {sql}")
    return bad


def test_renewal_scan_reads_its_candidates_from_an_index(statistics: str) -> None:
    fields = {"expiration_date": "2027-03-31", "notice_period": "sixty (60) days"}
    contracts = [_active_contract(utc(2026, 11, 2, 10), fields) for _ in range(3)]
    for _ in range(4):  # not candidates: a walk of the table would read them
        _create(utc(2026, 11, 2, 10))
    at = utc(2027, 1, 5, 9)
    with time_machine.travel(at, tick=False), selects() as seen:
        out = renewals.scan_chunked(at, chunk=2)
    assert out["checked"] == 3 and out["updated"] == 3
    assert seen, "the scan ran no SELECT"
    assert table_walks(seen) == []
    with read_session() as s:
        assert renewals.candidate_ids(s) == sorted(contracts)
    # A second pass finds nothing new: no write transaction at all (the dates are compared outside the lock).
    with time_machine.travel(at, tick=False):
        again = renewals.scan_chunked(at, chunk=2)
    assert again == {"checked": 3, "updated": 0, "tasks": 0, "transactions": 0}


def test_sla_scan_reads_its_candidates_from_indexes(statistics: str) -> None:
    ids = [_create(utc(2026, 11, 30, 9)) for _ in range(3)]  # due Monday 13:00 (4 business hours)
    for at, field in ((utc(2026, 11, 30, 12), "at_risk"), (utc(2026, 11, 30, 14), "breached")):
        with time_machine.travel(at, tick=False), selects() as seen:
            out = engine.scan_chunked(at, chunk=2)
        assert out[field] == len(ids), out
        assert table_walks(seen) == []
    later = utc(2026, 12, 1, 14)  # repeat escalations read the timers through next_escalation_at
    with time_machine.travel(later, tick=False), selects() as seen:
        out = engine.scan_chunked(later, chunk=2)
    assert out["escalated"] == len(ids), out
    assert table_walks(seen) == []
