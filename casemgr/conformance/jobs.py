"""Worker job: recompute the conformance snapshot the dashboard shows."""

from __future__ import annotations

from typing import Any

from casemgr.conformance import service
from casemgr.jobs.models import Job
from casemgr.jobs.service import job_handler


@job_handler("conformance.refresh", own_transactions=True, long_lease=True)
def conformance_refresh(session: Any, job: Job) -> None:
    service.refresh()
