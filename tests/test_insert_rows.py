"""casemgr.db.insert_rows stores exactly what Core's `session.execute(insert(table), rows)` stores (issue 23: the
batch writers build SQLite parameters themselves, with the columns' own bind processors)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import allocate_ids, draft, insert_rows, read_session, row_of, write_session
from casemgr.jobs.models import Job


def _raw(table: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """The stored values as the database holds them (no type processing on the way back)."""
    with read_session() as s:
        rows = s.execute(text(f"SELECT * FROM {table} WHERE id IN ({', '.join(str(i) for i in ids)}) ORDER BY id"))
        return [tuple(r)[1:] for r in rows]  # without the id


def _both(table: Any, make: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with write_session() as s:
        a, b = allocate_ids(s, table, 2)
        insert_rows(s, table, [make(a)])
        s.execute(insert(table), [make(b)])
    return _raw(table.name, [a]), _raw(table.name, [b])


def test_the_stored_values_equal_cores() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    mine, core = _both(Job.__table__, lambda i: row_of(draft(Job, id=i, kind="k", payload={"b": [1, "é"], "a": None},
                                                              run_at=at, created_at=at)))
    assert mine == core and mine[0][1] is not None
    event = {"ts": at, "actor": "user:t", "action": "case.created", "case_id": None, "entity": None, "before": None,
             "after": {"z": 1.5, "a": [True, None]}, "prev_hash": "p", "hash": "h"}
    with write_session() as s:
        insert_rows(s, AuditEvent.__table__, [{"seq": 10_001, **event}])
        s.execute(insert(AuditEvent.__table__), [{"seq": 10_002, **event}])
    with read_session() as s:
        stored = [tuple(r)[1:] for r in s.execute(text("SELECT * FROM audit_events WHERE seq >= 10001 ORDER BY seq"))]
    assert len(stored) == 2 and stored[0] == stored[1]
    with write_session() as s:  # the audit chain check must not see these hand-made rows
        s.execute(delete(AuditEvent).where(AuditEvent.seq >= 10_000))


def test_rows_with_different_columns_and_missing_defaults(make_case) -> None:  # type: ignore[no-untyped-def]
    """Rows of one call may name different columns; a column left out whose default Python fills goes through
    Core, so it gets its default there too."""
    case_id = make_case()
    with write_session() as s:
        a, b, c = allocate_ids(s, Job.__table__, 3)
        insert_rows(s, Job.__table__, [{"id": a, "kind": "one", "payload": {}},  # status, attempts ... defaulted
                                       row_of(draft(Job, id=b, kind="two")),
                                       {"id": c, "kind": "three", "payload": {"case_id": case_id}}])
    with read_session() as s:
        jobs = {j.kind: j for j in s.execute(select(Job).where(Job.id.in_([a, b, c]))).scalars()}
    assert set(jobs) == {"one", "two", "three"}
    assert jobs["one"].status == jobs["two"].status == "queued" and jobs["three"].payload == {"case_id": case_id}
    with read_session() as s:
        assert s.get(Case, case_id) is not None



def test_rows_go_in_as_one_statement_per_table_in_bounded_chunks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One multi-row INSERT per table and chunk on SQLite, not one step per row: the driver gives up the GIL for
    every row it steps, and a served writer thread then waits for it once per row."""
    from sqlalchemy import event

    from casemgr import db

    engine = db.get_engine(write=True)
    if engine.dialect.name != "sqlite":
        pytest.skip("the multi-row statement is SQLite's path; other databases take Core's")
    statements: list[int] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO jobs"):
            statements.append(0 if executemany else statement.count("), ("))

    def jobs(ids: list[int]) -> list[dict[str, Any]]:
        return [row_of(draft(Job, id=i, kind=f"chunk-{i}", payload={"n": i})) for i in ids]

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with write_session() as s:
            ids = allocate_ids(s, Job.__table__, 12)
            insert_rows(s, Job.__table__, jobs(ids[:7]))
        assert statements == [6]  # one statement, seven rows
        statements.clear()
        monkeypatch.setattr(db, "MAX_ROWS_PER_INSERT", 2)
        with write_session() as s:
            insert_rows(s, Job.__table__, jobs(ids[7:]))
        assert statements == [1, 1, 0]  # five rows: 2 + 2 + 1
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    with read_session() as s:
        stored = {j.id: (j.kind, j.payload) for j in s.execute(select(Job).where(Job.id.in_(ids))).scalars()}
    assert stored == {i: (f"chunk-{i}", {"n": i}) for i in ids}
