"""Record security events so an attacker can neither hide from the log nor flood the audit chain with it.

Events are aggregated: one `security_events` row per (minute, kind, client, name, path) with a count, bumped by
an atomic upsert. Only the first event of such a row is appended to the hash-chained audit trail
(`security.<kind>`), so a password-spraying client adds at most one chain event per name per minute. A client
that produces more than ROWS_PER_CLIENT_PER_MINUTE distinct rows in a minute (rotating names or paths) is
folded into one row per kind with name and path "*": its count still grows, the chain does not.

Where a security event accompanies a change (a login creates a session, a logout deletes one, a failure moves
the throttle), it is written in the caller's transaction. Refusals that change nothing (403, CSRF, 429) are
written in a transaction of their own; a database too busy to take them must not turn the refusal into a 500,
so those writes log and carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from casemgr import csvsafe
from casemgr.audit import service as audit
from casemgr.clock import now
from casemgr.db import write_session
from casemgr.ratelimit import service as ratelimit
from casemgr.security.enums import SecurityEventKind
from casemgr.security.models import SecurityEvent

log = logging.getLogger(__name__)

ROWS_PER_CLIENT_PER_MINUTE = 30
FOLDED = "*"


def _clip(value: str | None, n: int) -> str:
    # Control characters out: these strings come from attackers and end up in CSV, HTML and the chain.
    text = "".join(ch if ch.isprintable() else "?" for ch in (value or ""))
    return text[:n]


def record(
    session: Session, kind: SecurityEventKind, *, client: str, username: str | None = None,
    path: str | None = None, detail: str | None = None, actor: str | None = None,
) -> SecurityEvent | None:
    """Count one event in the caller's transaction; the first of its row per minute also goes to the audit chain."""
    at = now()
    minute = int(at.timestamp()) // 60 * 60
    client = _clip(client, 64) or "unknown"
    username, path, detail = _clip(username, 100), _clip(path, 200), _clip(detail, 300)
    table = SecurityEvent.metadata.tables[SecurityEvent.__tablename__]  # a typed Table
    key = (table.c.minute == minute) & (table.c.kind == str(kind)) & (table.c.client == client)
    result = session.execute(
        table.update().where(key & (table.c.username == username) & (table.c.path == path))
        .values(count=table.c.count + 1, last_at=at)
    )
    bumped = getattr(result, "rowcount", 0)
    if bumped:
        return None
    if not ratelimit.allow(f"seclog:{client}", ROWS_PER_CLIENT_PER_MINUTE, 60, session=session):
        username, path, detail = FOLDED, FOLDED, "more distinct events from this client than the log keeps apart"
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new_row = insert(table).values(minute=minute, kind=str(kind), client=client, username=username, path=path,
                                   detail=detail, count=1, first_at=at, last_at=at)
    stmt = new_row.on_conflict_do_update(
        index_elements=["minute", "kind", "client", "username", "path"],
        set_={"count": table.c.count + 1, "last_at": at},
    ).returning(table.c.id, table.c.count)
    row_id, count = session.execute(stmt).one()
    if count == 1:
        audit.record(session, actor=actor or f"anonymous:{client}", action=f"security.{kind}",
                     entity=f"security_event:{row_id}",
                     after={"client": client, "username": username or None, "path": path or None,
                            "detail": detail or None})
    return None


def record_now(kind: SecurityEventKind, **kwargs: Any) -> None:
    """record() in a transaction of its own, for refusals that change nothing; never raises on a busy database."""
    try:
        with write_session() as s:
            record(s, kind, **kwargs)
    except OperationalError as exc:
        log.warning("security event %s not recorded (database busy or unavailable): %s", kind, exc)


async def record_async(kind: SecurityEventKind, **kwargs: Any) -> None:
    from fastapi.concurrency import run_in_threadpool

    await run_in_threadpool(record_now, kind, **kwargs)


def recent(session: Session, *, limit: int = 200, kind: str | None = None,
           since: datetime | None = None) -> list[SecurityEvent]:
    stmt = select(SecurityEvent).order_by(col(SecurityEvent.last_at).desc(), col(SecurityEvent.id).desc())
    if kind:
        stmt = stmt.where(col(SecurityEvent.kind) == kind)
    if since is not None:
        stmt = stmt.where(col(SecurityEvent.last_at) >= since)
    return list(session.execute(stmt.limit(max(1, min(limit, 5000)))).scalars())


EXPORT_FIELDS = ["first_at", "last_at", "kind", "count", "client", "username", "path", "detail"]


def iter_rows(session: Session, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        stmt = select(SecurityEvent).where(col(SecurityEvent.id) > last).order_by(col(SecurityEvent.id)).limit(2000)
        if since is not None:
            stmt = stmt.where(col(SecurityEvent.last_at) >= since)
        rows = list(session.execute(stmt).scalars())
        if not rows:
            return
        for ev in rows:
            yield {"first_at": ev.first_at.isoformat(), "last_at": ev.last_at.isoformat(), "kind": ev.kind,
                   "count": ev.count, "client": ev.client, "username": ev.username, "path": ev.path,
                   "detail": ev.detail}
        last = rows[-1].id or last
        session.expunge_all()


def export_csv(session: Session, out: IO[str], since: datetime | None = None) -> int:
    # casemgr.csvsafe neutralises formula starts: names typed at login are attacker text.
    writer = csvsafe.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    n = 0
    for row in iter_rows(session, since):
        writer.writerow(row)
        n += 1
    return n
