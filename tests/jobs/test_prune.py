"""jobs.prune deletes done jobs older than a week in short chunks; recent, queued and dead jobs stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlmodel import col

from casemgr import worker
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue


def test_prune_deletes_old_done_jobs_in_chunks_and_keeps_the_rest(monkeypatch, run_jobs) -> None:
    monkeypatch.setattr(worker, "PRUNE_FIRST_CHUNK", 2)
    monkeypatch.setattr(worker, "PRUNE_CHUNK", 3)
    old, recent = now() - timedelta(days=9), now() - timedelta(days=2)
    with write_session() as s:
        for i in range(11):
            s.add(Job(kind="mail.send", status="done", finished_at=old, idempotency_key=f"old-{i}"))
        s.add(Job(kind="mail.send", status="done", finished_at=recent, idempotency_key="recent"))
        s.add(Job(kind="mail.send", status="dead", finished_at=old, idempotency_key="dead"))
        s.add(Job(kind="mail.send", status="queued", run_at=now() + timedelta(days=1), idempotency_key="later"))
        enqueue(s, "jobs.prune", {})
    run_jobs()
    with read_session() as s:
        left = set(s.execute(select(col(Job.idempotency_key)).where(col(Job.kind) == "mail.send")).scalars())
        prune = s.execute(select(Job).where(col(Job.kind) == "jobs.prune")).scalars().one()
    assert left == {"recent", "dead", "later"}
    assert prune.status == "done"
