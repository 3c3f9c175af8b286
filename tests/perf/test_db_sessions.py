"""Write sessions under contention: nested sessions don't wait for themselves, and on PostgreSQL writers that
hold the audit head while needing a second connection cannot be starved of one by writers waiting behind them."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, text

from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.db import read_session, write_session


class _NoWaitLock:
    """The SQLite writers' lock, failing the test instead of waiting: a thread that finds it taken would wait
    (sqlite_busy_timeout_ms) and then go on without it, so only the attempt to wait shows the fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self._lock.acquire(blocking=False):
            raise AssertionError("a write session waited for the lock its own outer session holds")
        return True

    def release(self) -> None:
        self._lock.release()


def test_nested_write_session_on_one_thread_does_not_wait_for_its_outer_session(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr import db

    monkeypatch.setattr(db, "_sqlite_write_lock", _NoWaitLock())
    with write_session():
        with write_session() as inner:  # e.g. metrics.live_snapshot computing a first snapshot
            audit.record(inner, actor="test", action="inner")
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 1


def test_writers_holding_the_audit_head_still_get_a_connection_for_reads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_DB_POOL_SIZE", "2")  # pool 2 (+2 overflow on PostgreSQL), 8 writers
    rebuild()
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

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Starved of a connection, a writer fails with the pool's timeout (or hangs on the chain head's row lock):
    # an error or a thread still alive, without a wall-clock bound that a busy machine could break.
    assert not [t for t in threads if t.is_alive()], "writers stalled (pool starvation)"
    assert not errors, errors
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 9
        assert audit.verify(s).ok
