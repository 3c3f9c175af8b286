"""Rate limits that hold across app processes and hosts.

A limit kept in process memory is multiplied by `--workers N` and by every host behind the load balancer, so
the public form and the login page count in the database instead: one row per key and fixed window, bumped
by an atomic upsert. The sliding estimate weighs the previous window by how much of it still overlaps the
last `window_s` seconds (the usual two-window approximation), so a burst across a window edge is still caught.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import TextClause, case, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from casemgr.clock import now
from casemgr.db import write_session
from casemgr.ratelimit.models import Backoff, RateCounter

KEEP_S = 86_400  # counters older than this are deleted now and then
_PRUNE_CHANCE = 0.01


_UPSERTS: dict[int, TextClause] = {}


def _upsert(n: int) -> TextClause:
    """The upsert adding :n0.. to the counters of keys :k0.. in window :w, returning each key's new count and
    its count in window :prev (NULL if none).

    Text, one statement per number of keys: SQLAlchemy cannot cache the compiled form of its dialect upsert
    constructs (ON CONFLICT ... excluded), so each call compiled it again, ~3 ms of CPU, which was a third of
    a mail group commit's writer time (issue 23 profile); and the previous window comes back with it instead of
    from a second query. The SQL is the same on SQLite and PostgreSQL.
    """
    stmt = _UPSERTS.get(n)
    if stmt is None:
        values = ", ".join(f"(:k{i}, :w, :n{i})" for i in range(n))
        stmt = text(f'INSERT INTO rate_counters ("key", window_start, count) VALUES {values} '
                    'ON CONFLICT ("key", window_start) DO UPDATE SET count = rate_counters.count + excluded.count '
                    'RETURNING "key", count, (SELECT p.count FROM rate_counters AS p '
                    'WHERE p."key" = rate_counters."key" AND p.window_start = :prev)')
        _UPSERTS[n] = stmt
    return stmt


def _add(session: Session, adds: dict[str, int], window_start: int,
         previous_start: int) -> dict[str, tuple[int, int]]:
    """Add to each key's counter for this window (atomic on SQLite and PostgreSQL); per key its new count and
    its count in the window starting at `previous_start`."""
    params: dict[str, object] = {"w": window_start, "prev": previous_start}
    for i, (key, n) in enumerate(adds.items()):
        params[f"k{i}"], params[f"n{i}"] = key, n
    return {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in session.execute(_upsert(len(adds)), params).all()}


def _bump(session: Session, key: str, window_start: int, window_s: int) -> tuple[int, int]:
    """Add one to the key's counter for this window; its new count and the previous window's count."""
    return _add(session, {key: 1}, window_start, window_start - window_s)[key]


def _windows(window_s: int) -> tuple[int, float]:
    ts = now().timestamp()
    start = int(ts // window_s) * window_s
    return start, (ts - start) / window_s


def _estimate(previous: int, current: int, elapsed: float) -> float:
    return previous * (1.0 - elapsed) + current


def _maybe_prune(session: Session) -> None:
    if random.random() < _PRUNE_CHANCE:  # noqa: S311 - not security: spreads the clean-up over requests
        cutoff = int(now().timestamp()) - KEEP_S
        session.execute(delete(RateCounter).where(RateCounter.window_start < cutoff))


def allow(key: str, limit: int, window_s: int = 60, *, session: Session | None = None) -> bool:
    """Count one attempt for `key`; False if it makes more than `limit` in the last `window_s` seconds."""
    if limit <= 0:
        return False
    if session is None:
        with write_session() as s:
            return allow(key, limit, window_s, session=s)
    start, elapsed = _windows(window_s)
    current, previous = _bump(session, key, start, window_s)
    _maybe_prune(session)
    return _estimate(previous, current, elapsed) <= limit


def allow_many(keys: list[str], limit: int, window_s: int, *, session: Session) -> list[bool]:
    """allow() for each key in order, with one upsert and one read for all of them (batch writers: the mail
    group commit acknowledges a batch of senders). A key listed twice counts twice, as two calls would."""
    if not keys:
        return []
    if limit <= 0:
        return [False] * len(keys)
    start, elapsed = _windows(window_s)
    adds: dict[str, int] = {}
    for key in keys:
        adds[key] = adds.get(key, 0) + 1
    counts = _add(session, adds, start, start - window_s)
    _maybe_prune(session)
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        final, previous = counts[key]
        current = final - adds[key] + seen[key]  # what allow() would have seen at this call
        out.append(_estimate(previous, current, elapsed) <= limit)
    return out


def hit(key: str, window_s: int, *, session: Session) -> None:
    """Count one event (a failed login) without deciding anything."""
    start, _ = _windows(window_s)
    _bump(session, key, start, window_s)
    _maybe_prune(session)


def exceeded(key: str, limit: int, window_s: int, *, session: Session) -> bool:
    """Whether `key` already has `limit` events in the last `window_s` seconds."""
    start, elapsed = _windows(window_s)
    rows = dict(session.execute(select(RateCounter.window_start, RateCounter.count).where(
        RateCounter.key == key, RateCounter.window_start.in_([start, start - window_s]))).all())
    return _estimate(rows.get(start - window_s, 0), rows.get(start, 0), elapsed) >= limit


def clear(prefix: str = "", *, session: Session | None = None) -> int:
    """Forget counters whose key starts with `prefix` (an admin unblocking an address; tests)."""
    if session is None:
        with write_session() as s:
            return clear(prefix, session=s)
    res = session.execute(delete(RateCounter).where(func.substr(RateCounter.key, 1, len(prefix)) == prefix)
                          if prefix else delete(RateCounter))
    return int(res.rowcount or 0)


# ---------------------------------------------------------------- growing delays (login throttling)


@dataclass(frozen=True)
class BackoffPolicy:
    """`free` failures cost nothing; each one after waits base_s * 2**(n - free - 1) seconds, at most cap_s.
    Failures older than forget_s are forgotten."""

    free: int
    base_s: float
    cap_s: float
    forget_s: int = 900

    def delay(self, failures: int) -> float:
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** min(over - 1, 30))


def backoff_wait(key: str, *, session: Session) -> float:
    """Seconds until `key` may try again (0 when it may now)."""
    row = session.get(Backoff, key)
    if row is None:
        return 0.0
    return max(0.0, row.blocked_until - now().timestamp())


def backoff_fail(key: str, policy: BackoffPolicy, *, session: Session) -> float:
    """Count one failure for `key`; returns the delay now imposed on it (atomic upsert, then one update)."""
    ts = now().timestamp()
    table = Backoff.metadata.tables[Backoff.__tablename__]  # a typed Table
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stale = table.c.last_failure < int(ts) - policy.forget_s
    new_row = insert(table).values(key=key, failures=1, last_failure=int(ts), blocked_until=0.0)
    upsert = new_row.on_conflict_do_update(
        index_elements=["key"],
        set_={"failures": case((stale, 1), else_=table.c.failures + 1), "last_failure": int(ts)},
    ).returning(table.c.failures)
    failures = int(session.execute(upsert).scalar_one())
    delay = policy.delay(failures)
    if delay:
        session.execute(update(table).where(table.c.key == key).values(blocked_until=ts + delay))
    if random.random() < _PRUNE_CHANCE:  # noqa: S311 - not security: spreads the clean-up over requests
        session.execute(delete(table).where(table.c.last_failure < int(ts) - KEEP_S))
    return delay


def backoff_reset(key: str, *, session: Session) -> None:
    session.execute(delete(Backoff).where(col(Backoff.key) == key))
