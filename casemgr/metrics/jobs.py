"""Worker job: refresh the dashboard rollups and snapshot."""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler
from casemgr.metrics import live, rollup, service

# Seconds of rollup chunks one job run spends before handing over to a continuation job: a catch-up of millions of
# visits (a fresh import, `--full`) must not keep the worker from AI enrichment and mail for half an hour.
RUN_BUDGET_S = 60.0


@job_handler("metrics.refresh", own_transactions=True, long_lease=True)
def metrics_refresh(session: Any, job: Job) -> None:
    # Only the changes since the last run, in short write transactions (issue 23); `full` rebuilds, still chunked.
    if job.payload.get("full"):
        rollup.start_rebuild()
        live.reset()  # the live counters recounted from the tables (a repair; the triggers keep them exact)
    stats = rollup.roll_pending(max_s=RUN_BUDGET_S)
    if stats["more"]:
        from casemgr.db import write_session

        # Live figures and views wait for the end of the catch-up: they cost a read of the tables each.
        with write_session() as ws:
            enqueue(ws, "metrics.refresh", {}, idempotency_key=f"metrics.refresh:more:{job.id}")
        return
    service.refresh_in_steps(rolled=stats["visits"])
