"""Worker job: refresh the dashboard rollups and snapshot."""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import job_handler
from casemgr.metrics import service


@job_handler("metrics.refresh", own_transactions=True, long_lease=True)
def metrics_refresh(session: Any, job: Job) -> None:
    # Only the changes since the last run, in short write transactions (issue 23); `full` rebuilds, still chunked.
    service.refresh_in_steps(full=bool(job.payload.get("full")))
