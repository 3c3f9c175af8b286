"""Worker job: refresh the dashboard rollups and snapshot."""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import job_handler
from casemgr.metrics import service


@job_handler("metrics.refresh", own_transactions=True, long_lease=True)
def metrics_refresh(session: Any, job: Job) -> None:
    # Long reads, short writes: must not hold SQLite's write lock for the whole refresh.
    service.refresh_in_steps(full=bool(job.payload.get("full")))
