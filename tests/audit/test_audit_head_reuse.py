"""The chain head is locked once per transaction and reused; savepoint rollbacks and new transactions reload it."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.db import get_engine, read_session, write_session


def _actions() -> list[tuple[int, str]]:
    with read_session() as s:
        return [(e.seq, e.action) for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]


def test_rolled_back_savepoint_does_not_leave_a_gap_or_fork() -> None:
    with write_session() as s:
        audit.record(s, actor="test", action="a")
        try:
            with s.begin_nested():
                audit.record(s, actor="test", action="b")
                audit.record(s, actor="test", action="b2")
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
        audit.record(s, actor="test", action="c")
    assert _actions() == [(1, "a"), (2, "c")]
    with read_session() as s:
        assert audit.verify(s).ok


def test_first_event_ever_inside_a_rolled_back_savepoint() -> None:
    with write_session() as s:
        try:
            with s.begin_nested():
                audit.record(s, actor="test", action="gone")  # creates the head row in the savepoint
                raise RuntimeError
        except RuntimeError:
            pass
        audit.record(s, actor="test", action="kept")
    assert _actions() == [(1, "kept")]
    with read_session() as s:
        assert audit.verify(s).ok


def test_one_session_over_several_transactions_and_a_second_writer() -> None:
    with Session(get_engine(write=True), expire_on_commit=False) as s:
        audit.record(s, actor="test", action="t1")
        s.commit()
        with write_session() as other:  # another writer moves the head meanwhile
            audit.record(other, actor="test", action="other")
        audit.record(s, actor="test", action="t2")  # must see the moved head, not a stale cached one
        s.commit()
    assert _actions() == [(1, "t1"), (2, "other"), (3, "t2")]
    with read_session() as s:
        assert audit.verify(s).ok
