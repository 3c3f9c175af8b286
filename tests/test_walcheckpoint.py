"""SQLite WAL checkpoints run beside the writers, not inside a commit under the write lock (issue 23)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from casemgr import walcheckpoint
from casemgr.db import get_engine, read_session, write_session

pytestmark = pytest.mark.sqlite_only


def _wait_for(cond, timeout_s: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_write_connections_leave_checkpoints_to_the_checkpointer() -> None:
    with write_session() as ws:
        assert ws.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
    with read_session() as rs:  # readers never write: SQLite's default is left alone
        assert rs.execute(text("PRAGMA wal_autocheckpoint")).scalar_one() == 1000


def test_the_wal_is_checkpointed_after_commits_outside_the_write_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walcheckpoint, "CHECKPOINT_EVERY", 8)
    seen: list[tuple[int, int, int] | None] = []
    real = walcheckpoint.checkpoint

    def spy(path: str) -> tuple[int, int, int] | None:
        res = real(path)
        seen.append(res)
        return res

    monkeypatch.setattr(walcheckpoint, "checkpoint", spy)
    with write_session() as ws:
        ws.execute(text("CREATE TABLE wal_probe (id INTEGER PRIMARY KEY, v TEXT)"))
    for i in range(400):
        with write_session() as ws:
            ws.execute(text("INSERT INTO wal_probe (v) VALUES (:v)"), {"v": "x" * 2000 + str(i)})
    assert _wait_for(lambda: len(seen) >= 10), f"the checkpointer ran {len(seen)} times for 400 commits"
    path = get_engine(write=True).url.database
    assert path
    last: list[tuple[int, int, int] | None] = [None]

    def settled() -> bool:  # the background checkpoint may still be running: PASSIVE then reports busy
        last[0] = real(path)
        return last[0] is not None and last[0][0] == 0
    assert _wait_for(settled), last[0]
    busy, frames, copied = last[0] or (1, -1, -1)
    # Without checkpoints, or with lock-free ones only, the WAL holds every one of the 400 commits' pages (804 frames):
    # it is started over only by a write that begins after a checkpoint copied all of it.
    assert busy == 0 and frames < 400 and copied == frames, (busy, frames, copied)
    assert any(res is not None and res[2] > 0 for res in seen), seen[:5]


def test_a_checkpoint_never_creates_a_removed_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gone = tmp_path / "gone.db"
    assert walcheckpoint.checkpoint(str(gone)) is None
    assert not gone.exists()
