"""Database engines and sessions.

SQLite is the embedded default (WAL, synchronous=NORMAL, busy_timeout). Write transactions on SQLite start
with BEGIN IMMEDIATE: a deferred transaction that reads first and writes later fails with SQLITE_BUSY when
another writer committed in between, and busy_timeout cannot help it. PostgreSQL uses one pooled engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from casemgr.config import get_settings

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def _make_engine(url: str, *, immediate: bool) -> Engine:
    settings = get_settings()
    if url.startswith("sqlite"):
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            pool_size=settings.db_pool_size,
            max_overflow=20,
        )
        busy = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql(begin_sql)

        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def get_engine(*, write: bool = False) -> Engine:
    settings = get_settings()
    url = settings.effective_database_url
    immediate = write and url.startswith("sqlite")
    key = f"{url}|{'w' if immediate else 'r'}"
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _make_engine(url, immediate=immediate)
                _engines[key] = engine
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


_writers = 0  # write sessions open or waiting for the write lock in this process (see writers_in_flight)
_writers_lock = threading.Lock()
_sqlite_write_lock = threading.Lock()


def writers_in_flight() -> int:
    """How many write sessions this process has open right now, the caller's included.

    Lets optional work inside a write transaction (inline AI enrichment) step aside under load: on SQLite the
    write lock is held for the whole transaction, so slow optional work there serialises every other writer.
    """
    return _writers


PG_GATE_WAIT_S = 30.0  # like the pool timeout; past it the writer goes on (and may wait in the pool instead)
_pg_gates: dict[int, threading.BoundedSemaphore] = {}
_tls = threading.local()


def _pg_write_gate() -> threading.BoundedSemaphore:
    """At most db_pool_size concurrent write sessions per process (the pool has as many again as overflow)."""
    size = max(1, get_settings().db_pool_size)
    gate = _pg_gates.get(size)
    if gate is None:
        with _lock:
            gate = _pg_gates.setdefault(size, threading.BoundedSemaphore(size))
    return gate


def write_session() -> AbstractContextManager[Session]:
    """A unit of work that changes data: commits on success, rolls back on any error."""
    return _write_session(same_thread=True)


@contextmanager
def _write_session(*, same_thread: bool) -> Iterator[Session]:
    # same_thread: entered and exited on one thread, so nesting can be told per thread. A FastAPI dependency is
    # entered, used and exited on different pool threads; it is never nested and does not count.
    global _writers
    with _writers_lock:
        _writers += 1
    engine = get_engine(write=True)
    # SQLite has one writer at a time. Threads of this process queue on a lock here instead of in SQLite's busy
    # handler, which polls with sleeps of up to 100 ms and let p99 run to seconds under 32 concurrent clients.
    # A plain Lock (FastAPI may exit a dependency on another thread); the timeout falls back to busy_timeout.
    # A write session opened inside another one on the same thread (metrics.live_snapshot) must not wait for the
    # lock or gate its own outer session holds.
    nested = same_thread and getattr(_tls, "depth", 0) > 0
    if same_thread:
        _tls.depth = getattr(_tls, "depth", 0) + 1
    serialise = engine.dialect.name == "sqlite"
    held = serialise and not nested and _sqlite_write_lock.acquire(
        timeout=get_settings().sqlite_busy_timeout_ms / 1000)
    # PostgreSQL: every audited write waits for the audit chain head's row lock while holding a pooled connection,
    # and the lock holder may need a second, short connection (rules/policy version checks). With as many writers
    # as pool slots, the waiters held every connection and the holder waited 30 s for one (bench intake, 32
    # clients). Writers beyond db_pool_size wait here, without a connection; the overflow stays free for reads.
    gate = None if serialise or nested else _pg_write_gate()
    gated = gate is not None and gate.acquire(timeout=PG_GATE_WAIT_S)
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        if held:
            _sqlite_write_lock.release()
        if gated:
            gate.release()  # type: ignore[union-attr]
        if same_thread:
            _tls.depth -= 1
        with _writers_lock:
            _writers -= 1


@contextmanager
def read_session() -> Iterator[Session]:
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def get_write_session() -> Iterator[Session]:
    """FastAPI dependency for state-changing requests."""
    with _write_session(same_thread=False) as session:
        yield session


def get_read_session() -> Iterator[Session]:
    with read_session() as session:
        yield session
