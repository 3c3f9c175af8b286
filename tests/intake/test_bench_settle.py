"""Between two measured rounds of a paired bench: SQLite's WAL folded back and the host's dirty pages written out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from casemgr.bench import paired
from casemgr.db import get_engine, write_session

pytestmark = pytest.mark.sqlite_only


def test_settle_truncates_the_wal_and_writes_out_dirty_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_sync = os.sync

    def sync() -> None:  # the real sync, counted
        synced.append(1)
        real_sync()

    monkeypatch.setattr(paired.os, "sync", sync)
    wal = Path(str(get_engine(write=True).url.database) + "-wal")
    with write_session() as s:
        s.execute(text("CREATE TABLE IF NOT EXISTS settle_probe (x TEXT)"))
        s.execute(text("INSERT INTO settle_probe VALUES (:x)"), [{"x": "y" * 500} for _ in range(200)])
    assert wal.stat().st_size > 0  # the commit is in the WAL until a checkpoint
    paired.settle_before_round()
    assert wal.stat().st_size == 0 and synced == [1]
    with write_session() as s:
        assert s.execute(text("SELECT count(*) FROM settle_probe")).scalar_one() == 200
        s.execute(text("DROP TABLE settle_probe"))
