"""Enqueue durable background jobs and register their handlers.

Jobs are rows in the `jobs` table, written in the caller's transaction, so a job exists exactly when the change
that needs it committed. The worker (casemgr.worker) claims due jobs with a lease; handlers must be idempotent
because a job whose worker died is run again after its lease expires.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from casemgr.clock import now
from casemgr.jobs.models import Job

Handler = Callable[[Session, Job], None]
HANDLERS: dict[str, Handler] = {}


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Decorator: register the function that runs jobs of `kind` (inside a write transaction)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


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
        existing = session.execute(select(Job).where(Job.idempotency_key == idempotency_key)).scalar_one_or_none()
        if existing is not None:
            return existing
    job = Job(kind=kind, payload=payload or {}, run_at=run_at or now(), idempotency_key=idempotency_key,
              max_attempts=max_attempts)
    session.add(job)
    session.flush()
    return job
