"""How sessions end, and what that keeps (issue 23: the PostgreSQL queue page re-planned every query)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from casemgr.db import get_engine, read_session, write_session


def _postgresql() -> None:
    if get_engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (prepared statements, autovacuum settings)")


def test_read_sessions_keep_psycopg_prepared_statements() -> None:
    """psycopg prepares a query after 5 runs on a connection but forgets them all on ROLLBACK: read sessions that
    ended in the pool's rollback never had one (fails on the old read_session)."""
    _postgresql()
    # More runs than the pool has connections times psycopg's threshold: every pooled connection has seen it 5 times.
    for i in range(60):
        with read_session() as s:
            s.execute(text("SELECT count(*) FROM cases WHERE id < :x"), {"x": i}).scalar_one()
    with read_session() as s:
        prepared = s.execute(text("SELECT count(*) FROM pg_prepared_statements "
                                  "WHERE statement LIKE 'SELECT count(*) FROM cases WHERE id < $1'")).scalar_one()
    assert prepared == 1


def test_a_read_session_that_fails_still_ends_in_a_rollback() -> None:
    with pytest.raises(RuntimeError), read_session() as s:
        s.execute(text("SELECT 1")).scalar_one()
        raise RuntimeError("the reader failed")
    with read_session() as s:  # the pooled connection is usable again
        assert s.execute(text("SELECT 1")).scalar_one() == 1


def test_a_write_in_a_read_session_is_never_kept() -> None:
    """SQLite: a read session that fails ends in a rollback. PostgreSQL: a read session is READ ONLY, so the write
    itself fails (its COMMIT could otherwise keep it)."""
    with write_session() as ws:
        ws.execute(text("CREATE TABLE IF NOT EXISTS session_probe (v INTEGER)"))
    try:
        with pytest.raises((RuntimeError, DBAPIError)), read_session() as s:
            s.execute(text("INSERT INTO session_probe (v) VALUES (1)"))
            assert get_engine().dialect.name != "postgresql", "a read session wrote on PostgreSQL"
            raise RuntimeError("the reader failed")
        with read_session() as s:
            assert s.execute(text("SELECT count(*) FROM session_probe")).scalar_one() == 0
    finally:
        with write_session() as ws:  # PostgreSQL keeps the test database: the schema check must not see it
            ws.execute(text("DROP TABLE session_probe"))


def test_a_pooled_connection_is_writable_again_after_a_read_session() -> None:
    with read_session() as s:
        s.execute(text("SELECT 1")).scalar_one()
    with write_session() as ws:
        ws.execute(text("CREATE TABLE session_probe2 (v INTEGER)"))
        ws.execute(text("DROP TABLE session_probe2"))


def test_hot_tables_have_tight_autovacuum_thresholds() -> None:
    """Migration 0025: without it a 100k-case database went a whole soak without vacuuming cases, and the queue's
    counts lost their index-only scans."""
    _postgresql()
    with read_session() as s:
        opts = dict(s.execute(text("SELECT relname, reloptions FROM pg_class WHERE relname IN "
                                   "('cases', 'stage_history')")).tuples().all())
    for table in ("cases", "stage_history"):
        assert "autovacuum_vacuum_scale_factor=0.02" in (opts[table] or []), (table, opts[table])
        assert "autovacuum_vacuum_insert_scale_factor=0.02" in (opts[table] or []), (table, opts[table])
