"""Chunked background work (issue 23): the SLA and renewal scans commit per chunk of cases, keyset by id, and
end with the same result as the one-transaction scan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import time_machine
from sqlalchemy import event, select

from casemgr import db
from casemgr.audit.models import AuditEvent
from casemgr.audit.service import verify
from casemgr.cases.models import Case, Task
from casemgr.db import get_engine, read_session, write_session
from casemgr.sla import chunks, engine, renewals
from tests.sla.test_engine import _create
from tests.sla.test_renewals import _active_contract


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@contextmanager
def commits() -> Iterator[list[int]]:
    """Counts commits on the write engine while the block runs."""
    seen: list[int] = []
    eng = get_engine(write=True)

    def on_commit(conn: Any) -> None:
        # On PostgreSQL reads share the engine and end in a COMMIT of a READ ONLY transaction (casemgr.db): not
        # a write transaction.
        if not conn.get_execution_options().get("postgresql_readonly"):
            seen.append(1)

    event.listen(eng, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(eng, "commit", on_commit)


def outcome(cid: int) -> tuple[Any, ...]:
    """What the scans did to one case, independent of its id."""
    with read_session() as s:
        c = s.get(Case, cid)
        assert c is not None
        actions = [e.action for e in s.execute(select(AuditEvent).where(AuditEvent.case_id == cid)
                                               .order_by(AuditEvent.seq)).scalars()]
        lead = len(s.execute(select(Task).where(Task.case_id == cid, Task.role == "lead")).scalars().all())
        return c.sla_state, c.priority, c.queue, c.owner_role, c.version, tuple(actions), lead


def test_sla_scan_over_more_cases_than_a_chunk_uses_several_transactions_and_ends_the_same() -> None:
    chunked_ids = [_create(utc(2026, 11, 30, 9)) for _ in range(7)]  # due Monday 13:00 (4 business hours)
    at_risk, breach = utc(2026, 11, 30, 12), utc(2026, 11, 30, 14)
    with time_machine.travel(at_risk, tick=False), commits() as seen:
        out = engine.scan_chunked(at_risk, chunk=3)
    assert out["at_risk"] == 7 and out["breached"] == 0 and out["more"] == 0
    assert out["transactions"] >= 3 and len(seen) == out["transactions"]  # pages of 3 + 3 + 1 cases
    with time_machine.travel(breach, tick=False), commits() as seen:
        out = engine.scan_chunked(breach, chunk=3)
    assert out["breached"] == 7 and out["transactions"] >= 3 and len(seen) == out["transactions"]
    with time_machine.travel(breach, tick=False):
        assert engine.scan_chunked(breach, chunk=3)["breached"] == 0  # idempotent

    # The same cases through the one-transaction scan: every case ends exactly as a chunked one did.
    whole_ids = [_create(utc(2026, 11, 30, 9)) for _ in range(7)]
    for at in (at_risk, breach):
        with time_machine.travel(at, tick=False), write_session() as s:
            engine.scan(s, at)
    assert {outcome(i) for i in chunked_ids} == {outcome(i) for i in whole_ids}
    assert len({outcome(i) for i in chunked_ids}) == 1
    assert outcome(chunked_ids[0])[0] == "breached"
    with read_session() as s:
        assert verify(s).ok


def test_a_scan_rests_after_each_write_transaction_with_no_write_session_open(monkeypatch) -> None:
    """Back to back, a 1M-case scan's chunks left the write lock free for microseconds, and other processes'
    writers (which poll for it) waited hundreds of ms: the scan rests after each commit, outside the lock."""
    rests: list[tuple[float, int]] = []

    def rest(spent_s: float, duty: float | None = None) -> float:
        rests.append((spent_s, db.writers_in_flight()))
        return 0.0

    monkeypatch.setattr(chunks, "rest_after", rest)
    for _ in range(7):
        _create(utc(2026, 11, 30, 9))
    at_risk = utc(2026, 11, 30, 12)
    with time_machine.travel(at_risk, tick=False), commits() as seen:
        out = engine.scan_chunked(at_risk, chunk=3)
    assert out["at_risk"] == 7 and out["transactions"] >= 3
    assert len(rests) == out["transactions"] == len(seen)  # one rest per committed chunk
    assert all(spent > 0 and open_writers == 0 for spent, open_writers in rests)


def test_limit_bounds_one_call_and_says_more() -> None:
    ids = [_create(utc(2026, 11, 30, 9)) for _ in range(5)]
    at = utc(2026, 11, 30, 14)
    with time_machine.travel(at, tick=False):
        first = engine.scan_chunked(at, chunk=2, limit=3)
        assert first["breached"] == 3 and first["more"] == 1 and first["transactions"] >= 2
        second = engine.scan_chunked(at, chunk=2, limit=3)
    assert second["breached"] == 2 and second["more"] == 0
    with read_session() as s:
        assert {s.get(Case, i).sla_state for i in ids} == {"breached"}  # type: ignore[union-attr]


def test_a_spent_budget_ends_the_call_after_a_page_and_says_more() -> None:
    """A catch-up scan hands the rest to a fresh job after its budget (the worker's slot runs AI enrichment in
    between), and each call still makes progress however small the budget."""
    ids = [_create(utc(2026, 11, 30, 9)) for _ in range(5)]
    at = utc(2026, 11, 30, 14)
    done = []
    with time_machine.travel(at, tick=False):
        for _ in range(5):
            out = engine.scan_chunked(at, chunk=2, budget_s=0.0)
            done.append(out["breached"])
            if not out["more"]:
                break
    assert done == [2, 2, 1, 0]  # one page per call; the last call finds nothing left and says no more
    with read_session() as s:
        assert {s.get(Case, i).sla_state for i in ids} == {"breached"}  # type: ignore[union-attr]


def test_renewal_scan_in_chunks_matches_the_single_transaction_scan() -> None:
    fields = {"expiration_date": "2027-03-31", "notice_period": "sixty (60) days"}
    chunked = [_active_contract(utc(2026, 11, 2, 10), fields) for _ in range(5)]
    at = utc(2027, 1, 5, 9)
    with time_machine.travel(at, tick=False), commits() as seen:
        out = renewals.scan_chunked(at, chunk=2)
    assert out["checked"] == 5 and out["updated"] == 5 and out["transactions"] >= 3 and len(seen) == out["transactions"]
    whole = [_active_contract(utc(2026, 11, 2, 10), fields) for _ in range(5)]
    with time_machine.travel(at, tick=False), write_session() as s:
        renewals.scan(s, at)

    def state(cid: int) -> tuple[Any, ...]:
        with read_session() as s:
            c = s.get(Case, cid)
            assert c is not None
            r = {k: v for k, v in c.contract["renewal"].items() if k not in ("task_id",)}
            tasks = s.execute(select(Task.name).where(Task.case_id == cid, Task.name.like("Renewal:%"))).scalars()
            return tuple(sorted(r.items())), c.version, tuple(sorted(tasks))  # no row order without ORDER BY

    assert {state(i) for i in chunked} == {state(i) for i in whole}
    assert len({state(i) for i in chunked}) == 1
