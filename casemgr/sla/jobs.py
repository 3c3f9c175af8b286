"""Job handlers of the SLA room: `sla.scan` (warnings, breaches, repeat escalations) and `renewal.scan`."""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler
from casemgr.sla import engine, renewals


@job_handler("sla.scan")
def sla_scan(session: Any, job: Job) -> None:
    limit = int(job.payload.get("limit", 500))
    out = engine.scan(session, limit=limit)
    if out["more"]:
        # A backlog of events: continue in a fresh job (short transactions), not in one huge one.
        enqueue(session, "sla.scan", {"limit": limit}, idempotency_key=f"sla.scan:more:{job.id}")


@job_handler("renewal.scan")
def renewal_scan(session: Any, job: Job) -> None:
    renewals.scan(session)
