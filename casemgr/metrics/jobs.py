"""Worker job: refresh the dashboard rollups and snapshot."""

from __future__ import annotations

from typing import Any

from casemgr.jobs.models import Job
from casemgr.jobs.service import job_handler
from casemgr.metrics import service


@job_handler("metrics.refresh")
def metrics_refresh(session: Any, job: Job) -> None:
    service.refresh(session, full=bool(job.payload.get("full")))
