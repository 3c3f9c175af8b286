"""Job handlers of the SLA room: `sla.scan` (warnings, breaches, repeat escalations) and `renewal.scan`.

Both run in their own short transactions (issue 23): a chunk of cases per write transaction, never the whole
table, so a scan over a large database does not hold SQLite's single writer against intake.
"""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler
from casemgr.sla import engine, renewals

# Wall time one sla.scan job spends before it hands the rest to a fresh job. The worker's slot runs AI enrichment
# batches between two jobs, so a catch-up scan (17 s at 1M cases, after a start or a pause) no longer holds the
# classification of new intake for its whole run (issue 23).
SCAN_JOB_BUDGET_S = 2.0


@job_handler("sla.scan", own_transactions=True)
def sla_scan(session: Any, job: Job) -> None:
    limit = int(job.payload.get("limit", 500))
    out = engine.scan_chunked(limit=limit, chunk=int(job.payload.get("chunk", engine.SCAN_CHUNK)),
                              budget_s=float(job.payload.get("budget_s", SCAN_JOB_BUDGET_S)))
    if out["more"]:
        # A backlog of events: continue in a fresh job, so one job's run (and its lease) stays bounded.
        from casemgr.db import write_session

        with write_session() as ws:
            enqueue(ws, "sla.scan", {"limit": limit}, idempotency_key=f"sla.scan:more:{job.id}")


@job_handler("renewal.scan", own_transactions=True)
def renewal_scan(session: Any, job: Job) -> None:
    renewals.scan_chunked(chunk=int(job.payload.get("chunk", engine.SCAN_CHUNK)))
