"""Enqueue durable background jobs and register their handlers.

Jobs are rows in the `jobs` table, written in the caller's transaction, so a job exists exactly when the change
that needs it committed. The worker (casemgr.worker) claims due jobs with a lease; handlers must be idempotent
because a job whose worker died is run again after its lease expires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select
from sqlmodel import Session, col

from casemgr import txnstats
from casemgr.clock import now
from casemgr.jobs.models import Job
from casemgr.limits import JOB_ERROR_CHARS

log = logging.getLogger(__name__)

Handler = Callable[[Session, Job], None]
HANDLERS: dict[str, Handler] = {}


# Kinds whose handler manages its own (short) transactions and gets a read session: long read-mostly work
# (e.g. the dashboard refresh) must not hold SQLite's single write lock for its whole run.
OWN_TRANSACTIONS: set[str] = set()
# Of those, kinds that hold a long lease while they run (periodic rebuilds that take minutes). Others keep the
# worker's lease: a worker SIGKILLed mid-job (e.g. ai.enrich waiting on a provider) must not leave its job
# "running" for an hour (tests/reliability/test_kill.py).
LONG_LEASE: set[str] = set()
OWN_TRANSACTION_LEASE_S = 3600.0


def job_handler(kind: str, *, own_transactions: bool = False, long_lease: bool = False) -> Callable[[Handler], Handler]:
    """Decorator: register the function that runs jobs of `kind` (inside a write transaction, unless
    `own_transactions`: then it gets a read session, opens its own write sessions and must be idempotent;
    `long_lease` with it: the job holds OWN_TRANSACTION_LEASE_S instead of the worker's lease while it runs)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        for flag, kinds in ((own_transactions, OWN_TRANSACTIONS), (own_transactions and long_lease, LONG_LEASE)):
            if flag:
                kinds.add(kind)
            else:
                kinds.discard(kind)
        return fn

    return register


def _rowcount(result: Any) -> int:
    """Rows an UPDATE/DELETE matched (session.execute is typed as returning Result; it is a CursorResult here)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    idempotency_key: str | None = None,
    max_attempts: int = 8,
) -> Job:
    """Add a job in the caller's transaction; the same idempotency key twice gives the existing job."""
    if idempotency_key:
        existing = session.execute(select(Job).where(col(Job.idempotency_key) == idempotency_key)).scalar_one_or_none()
        if existing is not None:
            return existing
    job = Job(kind=kind, payload=payload or {}, run_at=run_at or now(), idempotency_key=idempotency_key,
              max_attempts=max_attempts)
    session.add(job)
    session.flush()
    return job


# ---------------------------------------------------------------- claiming and running (used by casemgr.worker)

RETRY_BASE_S = 5.0
RETRY_MAX_S = 3600.0


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff after the n-th failed attempt: 5 s, 10 s, 20 s, ... capped at an hour."""
    return min(RETRY_BASE_S * (2 ** max(attempts - 1, 0)), RETRY_MAX_S)


# Kinds whose jobs a worker claims several at a time and runs as one batch: kind -> (run(job_ids, worker_id)
# -> {outcome: count}, batch size). The batch handler marks each job done, failed or lost itself.
BatchHandler = Callable[[list[int], str], dict[str, int]]
BATCH_HANDLERS: dict[str, tuple[BatchHandler, int]] = {}


def batch_handler(kind: str, size: int) -> Callable[[BatchHandler], BatchHandler]:
    """Decorator: run up to `size` due jobs of `kind` together (issue 23: AI enrichment in batches)."""

    def register(fn: BatchHandler) -> BatchHandler:
        BATCH_HANDLERS[kind] = (fn, size)
        return fn

    return register


def _due(t: datetime) -> Any:
    """Queued or failed and due, or running with an expired lease (the worker died): what claim may take."""
    from sqlalchemy import and_, or_

    return or_(and_(col(Job.status).in_(("queued", "failed")), col(Job.run_at) <= t),
               and_(col(Job.status) == "running", col(Job.locked_until) < t))


def claim(worker_id: str, *, limit: int = 1, lease_s: float = 120.0, kinds: Sequence[str] | None = None,
          exclude: Collection[str] = ()) -> list[int]:
    """Take up to `limit` due jobs (queued or failed and due, or running with an expired lease) for `worker_id`;
    only of `kinds` when given, never of `exclude` (the worker's long lane takes those, casemgr.worker).

    PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so concurrent workers never claim the same row. SQLite: the
    write session starts with BEGIN IMMEDIATE, so claims are serialised by the database lock.
    A job whose lease expired after its last allowed attempt is declared dead instead of run again.
    """
    from sqlalchemy import update

    from casemgr.db import write_session

    t = now()
    with write_session() as session:
        q = select(col(Job.id), col(Job.status), col(Job.attempts), col(Job.max_attempts)).where(_due(t))
        if kinds is not None:
            q = q.where(col(Job.kind).in_(list(kinds)))
        if exclude:
            q = q.where(col(Job.kind).not_in(sorted(exclude)))
        q = q.order_by(col(Job.run_at), col(Job.id)).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = session.execute(q).all()
        ids: list[int] = []
        for job_id, status, attempts, max_attempts in rows:
            if status == "running" and attempts >= max_attempts:
                session.execute(update(Job).where(col(Job.id) == job_id).values(
                    status="dead", locked_by=None, locked_until=None, finished_at=t,
                    last_error="lease expired on the last attempt (worker died mid-job)"))
                continue
            ids.append(job_id)
        if ids:
            session.execute(
                update(Job).where(col(Job.id).in_(ids)).values(
                    status="running", locked_by=worker_id, locked_until=t + timedelta(seconds=lease_s),
                    attempts=col(Job.attempts) + 1,
                ).execution_options(synchronize_session=False)
            )
    return ids


def any_due(kinds: Collection[str]) -> bool:
    """Whether a job of `kinds` is due, read without the write lock: the worker's long lane asks before it claims,
    so polling for its rare jobs costs no BEGIN IMMEDIATE against intake on SQLite (casemgr.worker)."""
    from casemgr.db import read_session

    with read_session() as session:
        q = select(col(Job.id)).where(_due(now()), col(Job.kind).in_(sorted(kinds))).limit(1)
        return session.execute(q).first() is not None


def run_claimed(job_id: int, worker_id: str) -> str:
    """Run one claimed job: 'done', 'retry', 'dead' or 'lost' (someone else holds it now).

    The job is marked done by the first statement of the handler's own transaction: the handler's changes and
    the done mark commit together or not at all, and on PostgreSQL the row stays locked while the handler runs,
    so a second worker cannot take it over even if the lease runs out meanwhile.
    """
    from casemgr.db import read_session

    try:
        with read_session() as rs:
            kind = rs.execute(select(col(Job.kind)).where(col(Job.id) == job_id)).scalar_one_or_none() or "?"
    except Exception as exc:
        log.warning("job %s: reading its kind failed: %s", job_id, exc)
        return _record_failure(job_id, worker_id, f"{type(exc).__name__}: {exc}")
    with txnstats.labelled(kind):  # the job's write transactions are timed under its kind (issue 23)
        return _run_claimed(job_id, worker_id, kind)


def _run_claimed(job_id: int, worker_id: str, kind: str) -> str:
    from sqlalchemy import update

    from casemgr.db import read_session, write_session

    try:
        if kind in LONG_LEASE:
            # No row lock protects these while they run: hold the lease long enough for a slow run (a full
            # dashboard rebuild takes minutes at 1M cases). They are periodic and idempotent anyway.
            with write_session() as session:
                session.execute(update(Job).where(col(Job.id) == job_id, col(Job.locked_by) == worker_id)
                                .values(locked_until=now() + timedelta(seconds=OWN_TRANSACTION_LEASE_S)))
        with read_session() as rs:
            if kind in OWN_TRANSACTIONS:
                job = rs.get(Job, job_id)
                if job is None or job.locked_by != worker_id:
                    return "lost"
                # End this read before the handler runs: on SQLite an open read pins the WAL, so during a minute-long
                # metrics refresh no checkpoint could pass it and the WAL grew; the commit after the job then paid
                # for checkpointing all of it (a 509 ms "mark done" write in the 1M soak). A handler that reads
                # through `rs` again simply begins a new read.
                rs.commit()
                HANDLERS[kind](rs, job)
        if kind in OWN_TRANSACTIONS:
            with write_session() as session:
                res = session.execute(
                    update(Job).where(col(Job.id) == job_id, col(Job.locked_by) == worker_id, col(Job.status) == "running")
                    .values(status="done", finished_at=now(), locked_until=None, last_error=None)
                    .execution_options(synchronize_session=False)
                )
            return "done" if _rowcount(res) else "lost"
        with write_session() as session:
            res = session.execute(
                update(Job).where(col(Job.id) == job_id, col(Job.locked_by) == worker_id, col(Job.status) == "running")
                .values(status="done", finished_at=now(), locked_until=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(res) == 0:
                return "lost"
            job = session.get(Job, job_id)
            assert job is not None
            kind = job.kind
            handler = HANDLERS.get(job.kind)
            if handler is None:
                raise LookupError(f"no handler registered for job kind {job.kind!r}")
            handler(session, job)
    except Exception as exc:  # the handler's transaction rolled back; record the failure in a new one
        log.warning("job %s (%s) failed: %s", job_id, kind, exc)
        return _record_failure(job_id, worker_id, f"{type(exc).__name__}: {exc}")
    return "done"


def mark_done(session: Any, job_id: int, worker_id: str) -> bool:
    """Mark a claimed job done in the caller's transaction (with the work it did); False if it was lost."""
    from sqlalchemy import update

    res = session.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.locked_by) == worker_id, col(Job.status) == "running")
        .values(status="done", finished_at=now(), locked_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return bool(cast(CursorResult[Any], res).rowcount)


def record_failure(job_id: int, worker_id: str, error: str) -> str:
    return _record_failure(job_id, worker_id, error)


def _record_failure(job_id: int, worker_id: str, error: str) -> str:
    from casemgr.db import write_session

    with write_session() as session:
        job = session.get(Job, job_id)
        if job is None or job.locked_by != worker_id:
            return "lost"
        t = now()
        job.last_error = error[:JOB_ERROR_CHARS]
        job.locked_by = None
        job.locked_until = None
        if job.attempts >= job.max_attempts:
            job.status = "dead"
            job.finished_at = t
        else:
            job.status = "failed"
            job.run_at = t + timedelta(seconds=backoff_seconds(job.attempts))
        session.add(job)
        return "dead" if job.status == "dead" else "retry"


def schedule_periodic(kind: str, every_s: float, payload: dict[str, Any] | None = None) -> bool:
    """Enqueue `kind` once per `every_s` window, however many workers ask (the window is the idempotency key)."""
    from sqlalchemy.exc import IntegrityError

    from casemgr.db import write_session

    window = int(now().timestamp() // every_s)
    try:
        with write_session() as session:
            key = f"periodic:{kind}:{int(every_s)}:{window}"
            if session.execute(select(col(Job.id)).where(col(Job.idempotency_key) == key)).first() is not None:
                return False
            enqueue(session, kind, payload or {}, idempotency_key=key, max_attempts=3)
        return True
    except IntegrityError:  # another worker enqueued the same window first
        return False


def prune_finished(older_than_days: float = 7.0) -> int:
    """Delete done jobs older than the given age (dead jobs stay for inspection)."""
    from sqlalchemy import delete

    from casemgr.db import write_session

    cutoff = now() - timedelta(days=older_than_days)
    with write_session() as session:
        res = session.execute(delete(Job).where(col(Job.status) == "done", col(Job.finished_at) < cutoff))
        return _rowcount(res)


def counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return {s: int(n) for s, n in session.execute(select(col(Job.status), func.count()).group_by(col(Job.status))).all()}
