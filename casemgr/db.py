"""Database engines and sessions.

SQLite is the embedded default (WAL, busy_timeout). Write connections run synchronous=FULL: every commit fsyncs
the WAL before it returns, so an acknowledgement sent after a commit (SMTP 250, an intake 2xx, a form confirmation)
survives power loss or an OS crash (issue 19); batched writers (casemgr.groupcommit) pay one fsync per batch.
Read connections never commit and keep NORMAL. Write transactions on SQLite start
with BEGIN IMMEDIATE: a deferred transaction that reads first and writes later fails with SQLITE_BUSY when
another writer committed in between, and busy_timeout cannot help it. PostgreSQL uses one pooled engine.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import SimpleNamespace
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Table, event, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from casemgr import jsontext, runtime, txnstats, walcheckpoint
from casemgr.config import Settings, get_settings


@event.listens_for(Session, "after_begin")
def _txn_began(session: Session, _transaction: Any, _connection: Any) -> None:
    txnstats.began(session.info)  # records only under a job's label (casemgr/txnstats.py)


def create_private_file(url: str) -> None:
    """Create a new SQLite database file readable by this user only (0600; its -wal and -shm files take the
    same mode from it). SQLite itself would create it with the process umask, usually world-readable."""
    import os

    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith(":memory:") or "?" in path or os.path.exists(path):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process created it first
    except OSError:
        # A missing or read-only volume: leave the error to the first connection, which the callers map to
        # "database unavailable" (503 / SMTP 451) instead of an unexpected FileNotFoundError (500).
        pass


def make_engine(url: str, settings: Settings, *, immediate: bool) -> Engine:
    """A new engine for `url` (the context, casemgr.runtime, keeps one for reads and one for writes)."""
    if url.startswith("sqlite"):
        settings.resolved_data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private_file(url)
        busy = settings.sqlite_busy_timeout_ms
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy / 1000},
            pool_size=settings.db_pool_size,
            max_overflow=20,
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # Durable before acknowledged (see the module docstring); NORMAL lost the last commits on power loss.
            cur.execute(f"PRAGMA synchronous={'FULL' if immediate else 'NORMAL'}")
            cur.execute("PRAGMA foreign_keys=ON")
            # Writers wait for the write lock in _on_begin_immediate below, not in SQLite's busy handler.
            cur.execute(f"PRAGMA busy_timeout={0 if immediate else int(busy)}")
            if immediate:
                # Checkpoints run after the write lock is released, in casemgr/walcheckpoint.py, not inside
                # whichever commit crosses SQLite's 1,000-page mark while this process's writers queue behind it.
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        if not immediate:
            @event.listens_for(engine, "begin")
            def _on_begin(conn):  # type: ignore[no-untyped-def]
                conn.exec_driver_sql("BEGIN")

            return engine

        @event.listens_for(engine, "begin")
        def _on_begin_immediate(conn):  # type: ignore[no-untyped-def]
            # Another process holds the write lock: retry every 0.5-5 ms. SQLite's own busy handler sleeps 25,
            # 50, then 100 ms between tries, which with two app processes put p99 intake latency at 150 ms
            # (issue 10, bench intake --workers 2). Once BEGIN IMMEDIATE succeeds, nothing else in a WAL write
            # transaction waits for a lock.
            deadline = time.monotonic() + busy / 1000
            delay = 0.0005
            while True:
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() + delay > deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, 0.005)

        return engine
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )


def get_engine(*, write: bool = False) -> Engine:
    """The context's engine (casemgr.runtime): on SQLite, `write=True` is the one that begins IMMEDIATE."""
    return runtime.current().engine(write=write)


def dispose_engines() -> None:
    """Close the context's pooled connections (a restore replaces the database file)."""
    runtime.current().dispose_engines()


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
_pg_gates_lock = threading.Lock()
_tls = threading.local()


def _pg_write_gate() -> threading.BoundedSemaphore:
    """At most db_pool_size concurrent write sessions per process (the pool has as many again as overflow)."""
    size = max(1, get_settings().db_pool_size)
    gate = _pg_gates.get(size)
    if gate is None:
        with _pg_gates_lock:
            gate = _pg_gates.setdefault(size, threading.BoundedSemaphore(size))
    return gate


@contextmanager
def sqlite_write_lock() -> Iterator[None]:
    """Hold this process's SQLite write lock (no write session): casemgr.walcheckpoint's short final pass."""
    held = _sqlite_write_lock.acquire(timeout=get_settings().sqlite_busy_timeout_ms / 1000)
    try:
        yield
    finally:
        if held:
            _sqlite_write_lock.release()


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
    committed = False
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
                committed = True
            except BaseException:
                session.rollback()
                raise
            finally:
                txnstats.ended(session.info)  # a background job's write-transaction length (issue 23)
    finally:
        if held:
            _sqlite_write_lock.release()
            if committed and engine.url.database:
                walcheckpoint.committed(engine.url.database)
        if gated:
            gate.release()  # type: ignore[union-attr]
        if same_thread:
            _tls.depth -= 1
        with _writers_lock:
            _writers -= 1


_read_only_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


@contextmanager
def read_session() -> Iterator[Session]:
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        with Session(engine, expire_on_commit=False) as session:
            yield session
        return
    # PostgreSQL: a READ ONLY transaction (psycopg puts it in the BEGIN: no extra round trip) that ends in COMMIT.
    # The pool's ROLLBACK made psycopg forget every prepared statement, so no query was ever prepared and each page
    # re-planned all its queries (the queue page: 8 -> 4 ms of server time). READ ONLY makes the COMMIT safe: a
    # write in a read session fails loudly instead of being kept (it used to be dropped without a word).
    ro = _read_only_engines.get(engine)
    if ro is None:
        ro = _read_only_engines[engine] = engine.execution_options(postgresql_readonly=True)
    with Session(ro, expire_on_commit=False) as session:
        yield session
        session.commit()


def get_write_session() -> Iterator[Session]:
    """FastAPI dependency for state-changing requests."""
    with _write_session(same_thread=False) as session:
        yield session


def get_read_session() -> Iterator[Session]:
    with read_session() as session:
        yield session


_pg_sequences: dict[str, str] = {}


def epoch_seconds(session: Session, column: Any) -> Any:
    """Seconds since 1970 of a datetime column, computed in SQL (SQLite stores UTC text, PostgreSQL timestamptz):
    a float per row instead of a datetime parsed and converted in Python. SQLite's date functions keep
    milliseconds."""
    from sqlalchemy import Float, cast

    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", column), Float)


def table_of(model: Any) -> Table:
    """The Core table of a SQLModel table class (mypy does not see SQLModel's `__table__`)."""
    return model.__table__


def allocate_ids(session: Session, table: Table, n: int) -> list[int]:
    """Reserve `n` primary keys of `table` in the caller's write transaction, for multi-row INSERTs that must
    know their ids up front (rows pointing at each other, audit content naming them).

    PostgreSQL: from the column's sequence. SQLite: max(id)+1 onwards; the write transaction holds the
    database's only write lock (BEGIN IMMEDIATE), so no other connection can take those ids before commit.
    """
    if n <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        seq = _pg_sequences.get(table.name)
        if seq is None:
            seq = session.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
            _pg_sequences[table.name] = seq
        return list(session.execute(text("SELECT nextval(:s) FROM generate_series(1, :n)"),
                                    {"s": seq, "n": n}).scalars())
    first = int(session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1
    return list(range(first, first + n))


_max_ids: dict[tuple[str, ...], Any] = {}


def allocate_id_ranges(session: Session, wants: Sequence[tuple[Table, int]]) -> list[list[int]]:
    """allocate_ids for several tables at once: on SQLite one statement reads every table's max(id).

    The mail group commit reserves case, message and party ids for each batch; three round trips through
    SQLAlchemy were a tenth of its writer time (issue 23 profile). The statement object is kept per table list,
    so SQLAlchemy's cache key for it is computed once.
    """
    if session.get_bind().dialect.name == "postgresql":
        return [allocate_ids(session, table, n) for table, n in wants]
    names = tuple(table.name for table, _ in wants)
    stmt = _max_ids.get(names)
    if stmt is None:
        stmt = select(*[select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery() for table, _ in wants])
        _max_ids[names] = stmt
    firsts = session.execute(stmt).one()
    return [list(range(int(first) + 1, int(first) + 1 + max(n, 0))) for first, (_, n) in zip(firsts, wants,
                                                                                           strict=True)]


_defaults: dict[type, list[tuple[str, Any, Any]]] = {}


def draft(model: type[SQLModel], **values: Any) -> SimpleNamespace:
    """A row of `model` not stored yet, as a plain object: the model's defaults overlaid with `values`.

    Planning code (validation, stage entry, routing) works on drafts, which cost a few microseconds where a
    table-model instance costs tens (SQLAlchemy instruments every attribute set). The ORM path turns a draft
    into an instance with `model(**vars(d))`; batch writers insert `row_of(d)` with Core.
    """
    spec = _defaults.get(model)
    if spec is None:
        spec = [(name, f.default, f.default_factory) for name, f in model.model_fields.items()]
        _defaults[model] = spec
    row = {name: (factory() if factory is not None else (None if default is PydanticUndefined else default))
           for name, default, factory in spec}
    row.update(values)
    return SimpleNamespace(**row)


def row_of(d: SimpleNamespace) -> dict[str, Any]:
    """A draft as a column dict for a Core INSERT (an unset id is left to the database)."""
    row = dict(vars(d))
    if row.get("id", 0) is None:
        del row["id"]
    return row


_inserts: dict[tuple[Table, tuple[str, ...], str], tuple[str, str, list[Any]]] = {}
MAX_ROWS_PER_INSERT = 500  # bounds the statement's text; SQLite's own limit on host parameters is checked too


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT plain column dicts in the caller's transaction, as `session.execute(insert(table), rows)` would.

    For the batch writers (intake group commit, audit chain, AI enrichment). On SQLite the statement text is built
    once per table and column set, and each row becomes a tuple through the columns' own bind processors (the
    ones Core applies), so the rows skip SQLAlchemy's per-row parameter machinery: compiled-parameter dicts and
    processor look-ups were a third of the intake writer's CPU (issue 23 profile). Rows lacking a column that has
    a Python-side default, and other databases, take the Core path. tests/test_insert_rows.py compares the stored
    values of both.

    The rows go in as one multi-row INSERT per table (up to MAX_ROWS_PER_INSERT and SQLite's limit on host
    parameters), not executemany: the driver releases the GIL around every row it steps, and in a served process
    the writer thread then waits for the request threads to hand it back, once per row. One statement per table
    took the intake writer's CPU from 0.84 to 0.61 ms per case and its wall time from 1.9 to 1.6 ms (issue 23).
    """
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        session.execute(insert(table), list(rows))
        return
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for keys, group in groups.items():
        spec = _inserts.get((table, keys, dialect.name))
        if spec is None:
            if any(c.key not in keys and (c.default is not None or c.server_default is not None) and not c.primary_key
                   for c in table.columns):
                session.execute(insert(table), group)  # Core fills in the defaults
                continue
            q = dialect.identifier_preparer
            cols = [table.c[k] for k in keys]
            head = f"INSERT INTO {q.format_table(table)} ({', '.join(q.format_column(c) for c in cols)}) VALUES "
            # The processors SQLAlchemy itself applies for this dialect (TypeDecorators included).
            spec = (head, f"({', '.join('?' for _ in cols)})", [c.type._cached_bind_processor(dialect) for c in cols])
            _inserts[(table, keys, dialect.name)] = spec
        head, one, processors = spec
        per = max(1, min(MAX_ROWS_PER_INSERT, _max_variables(conn) // len(keys)))
        for start in range(0, len(group), per):
            chunk = group[start:start + per]
            params = tuple(v if p is None else p(v) for row in chunk
                           for p, v in zip(processors, row.values(), strict=True))
            conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), params)


_variables_limit: int | None = None


def _max_variables(conn: Any) -> int:
    """SQLite's limit on host parameters per statement (32,766 since 3.32, 999 before; a build may set another)."""
    global _variables_limit
    if _variables_limit is None:
        raw = conn.connection.driver_connection
        _variables_limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(raw, "getlimit") else 999
    return _variables_limit
