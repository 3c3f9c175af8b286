"""Write sessions under contention: nested sessions don't wait for themselves, and on PostgreSQL writers that
hold the audit head while needing a second connection cannot be starved of one by writers waiting behind them."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, text

from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.db import read_session, write_session


def test_nested_write_session_on_one_thread_does_not_wait_for_its_outer_session() -> None:
    t0 = time.monotonic()
    with write_session():
        with write_session() as inner:  # e.g. metrics.live_snapshot computing a first snapshot
            audit.record(inner, actor="test", action="inner")
    assert time.monotonic() - t0 < 2
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 1


def test_writers_holding_the_audit_head_still_get_a_connection_for_reads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.config import reset_settings

    monkeypatch.setenv("CASEMGR_DB_POOL_SIZE", "2")  # pool 2 (+2 overflow on PostgreSQL), 8 writers
    reset_settings()
    errors: list[BaseException] = []
    with write_session() as s:  # the chain head exists (the very first event creates it)
        audit.record(s, actor="test", action="first")

    def writer(i: int) -> None:
        try:
            with write_session() as s:
                audit.record(s, actor="test", action=f"w{i}")  # takes the chain head (row lock on PostgreSQL)
                with read_session() as r:  # a second, short connection, like the rules version check
                    r.execute(text("SELECT 1"))
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert elapsed < 10, f"writers stalled for {elapsed:.1f} s (pool starvation)"
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 9
        assert audit.verify(s).ok
