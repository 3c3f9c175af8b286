"""SQLite WAL checkpoints outside the write lock (issue 23).

SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000 pages. casemgr.db releases its
process-wide write lock only after that commit returns, so every writer of the process (the group-commit intake
writer too) queued behind a checkpoint: ~50 ms of CPU on the 1M-case file, and 341 ms once a WAL had grown behind
a long read. Write connections turn the automatic checkpoint off (`PRAGMA wal_autocheckpoint=0`); every
CHECKPOINT_EVERY write commits (or CHECKPOINT_INTERVAL_S after the last wake-up), `committed()` wakes one daemon
thread per process, which runs a PASSIVE checkpoint on a connection of its own: it copies what no reader still
needs, and blocks no writer and no reader.

The thread opens the file with `mode=rw`: it never creates a database that was removed meanwhile (tests, restore).
What a process leaves in the WAL when it ends is copied by the next checkpoint, or by SQLite itself when the
database's last connection closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 64  # write commits; an intake commit writes a few pages, so about SQLite's own 1,000-page interval
# ... or this long after the last checkpoint, whichever comes first: a metrics rollup chunk at 1M cases writes
# ~2,000 pages, so 64 of them grew the WAL to 85,000 frames (340 MB), and every page read in every process of the
# host then searched that many frames' wal-index (the queue page's p95 rose from 35 to 59 ms during a catch-up).
CHECKPOINT_INTERVAL_S = 0.1

_lock = threading.Lock()
_commits = 0
_last = 0.0  # time.monotonic() of the last wake-up
_pending: set[str] = set()
_wake = threading.Event()
_thread: threading.Thread | None = None
stats = {"checkpoints": 0, "errors": 0}


def committed(path: str) -> None:
    """A write transaction on the database file `path` committed (called after the write lock is released)."""
    global _commits, _thread, _last
    with _lock:
        _commits += 1
        at = time.monotonic()
        if _commits < CHECKPOINT_EVERY and at - _last < CHECKPOINT_INTERVAL_S:
            return
        _commits, _last = 0, at
        _pending.add(path)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="casemgr-wal-checkpoint", daemon=True)
            _thread.start()
    _wake.set()


def _run() -> None:
    while True:
        _wake.wait()
        _wake.clear()
        with _lock:
            paths = list(_pending)
            _pending.clear()
        for path in paths:
            try:
                catch_up(path)
            except Exception:  # a maintenance thread must outlive one failure; the next commit retries
                stats["errors"] += 1
                log.warning("WAL checkpoint of %s failed", path, exc_info=True)


def catch_up(path: str) -> None:
    """Copy the WAL into the database: the bulk without any lock, then what the writers added meanwhile under this
    process's write lock (a short pass). SQLite reuses the WAL from its start only in a write that began after a
    checkpoint had copied all of it; a busy writer of this process always began before the lock-free pass ended,
    so the WAL grew without end (400 commits: 804 frames). After the locked pass the next write starts it over.

    Tried and reverted (issue 23): the locked pass only once the WAL passed 4,096 frames. Under API load it had
    run ~9 times a second (21 ms on average) and the intake writer waited for it, but in the SQLite 1M soak the
    queue page's p95 rose from 32 to 40 ms (worst minute 34.6 -> 40.8) in same-hour 4-minute runs, and the API's
    p99 stayed under 100 ms without it (89.8 ms)."""
    from casemgr.db import sqlite_write_lock

    res = checkpoint(path)
    if res is None or res[1] <= 0:
        return
    with sqlite_write_lock():
        checkpoint(path)


def checkpoint(path: str) -> tuple[int, int, int] | None:
    """One PASSIVE checkpoint of `path`: (busy, WAL frames, frames checkpointed), or None if it could not run."""
    if not Path(path).exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0, isolation_level=None)
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:  # a file removed or replaced meanwhile: the next commit's checkpoint catches up
        stats["errors"] += 1
        log.debug("WAL checkpoint of %s failed: %s", path, exc)
        return None
    stats["checkpoints"] += 1
    return int(row[0]), int(row[1]), int(row[2])


def truncate(path: str, *, attempts: int = 100, wait_s: float = 0.02) -> bool:
    """Copy the whole WAL into the database and empty it (TRUNCATE), for tools that want a clean start (benches);
    False if it stayed busy. SQLite answers busy at once, without waiting, while another connection checkpoints
    (this module's own thread in an app process, say), and leaves the WAL as it was: so try again a while."""
    conn = sqlite3.connect(path, timeout=10)  # the timeout: TRUNCATE waits for writers and readers to finish
    try:
        for _ in range(attempts):
            if not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                return True
            time.sleep(wait_s)
    finally:
        conn.close()
    return False
