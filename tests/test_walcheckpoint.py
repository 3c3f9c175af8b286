"""SQLite WAL checkpoints run beside the writers, not inside a commit under the write lock (issue 23)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from casemgr import walcheckpoint
from casemgr.db import read_session, write_session

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
    frames = [res[1] for res in seen if res is not None]
    assert any(res is not None and res[2] > 0 for res in seen), seen[:5]
    # Without checkpoints, or with lock-free ones only, the WAL grows through all 400 commits (804 frames at the
    # end): it is started over only by a write that begins after a checkpoint copied all of it, and a busy writer
    # always began before a lock-free pass ended. The locked pass lets the next write start it over.
    assert any(later < earlier for earlier, later in zip(frames, frames[1:], strict=False)), frames


def test_a_checkpoint_never_creates_a_removed_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gone = tmp_path / "gone.db"
    assert walcheckpoint.checkpoint(str(gone)) is None
    assert not gone.exists()


@pytest.mark.parametrize("interval", [0.0, 3600.0])
def test_big_commits_are_checkpointed_by_time_not_only_by_count(interval: float, monkeypatch: pytest.MonkeyPatch) -> None:
    # A metrics chunk writes ~2,000 pages per commit: waiting for 64 of them let the WAL reach 85,000 frames.
    monkeypatch.setattr(walcheckpoint, "CHECKPOINT_EVERY", 10**9)
    monkeypatch.setattr(walcheckpoint, "CHECKPOINT_INTERVAL_S", interval)
    monkeypatch.setattr(walcheckpoint, "_last", time.monotonic())
    time.sleep(0.3)  # a checkpoint woken by an earlier test's commits finishes before the spy goes in
    seen: list[object] = []
    real = walcheckpoint.checkpoint
    monkeypatch.setattr(walcheckpoint, "checkpoint", lambda path: seen.append(path) or real(path))
    for i in range(5):
        with write_session() as ws:
            ws.execute(text("CREATE TABLE IF NOT EXISTS wal_probe2 (v TEXT)"))
            ws.execute(text("INSERT INTO wal_probe2 (v) VALUES (:v)"), {"v": str(i)})
    if interval == 0.0:
        assert _wait_for(lambda: len(seen) >= 1), "no checkpoint although the interval had passed"
    else:
        time.sleep(0.3)  # give a wrongly woken checkpointer time to show up
        assert seen == []
