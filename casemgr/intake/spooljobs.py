"""Worker job `intake.spool`: a message `casemgr intake pipe` acknowledged becomes a case (see intake/spool.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from casemgr.db import write_session
from casemgr.intake.models import SpooledMessage
from casemgr.intake.service import ingest_raw
from casemgr.intake.spool import JOB_KIND
from casemgr.jobs.models import Job
from casemgr.jobs.service import job_handler


@job_handler(JOB_KIND, own_transactions=True)
def intake_spool(session: Any, job: Job) -> None:
    """Store the spooled message through the `intake eml` path, then drop it from the spool. Idempotent: a run
    that stored the message but failed before the delete stores nothing twice (the Message-ID is known, or the
    raw bytes for messages without one)."""
    spool_id = int(job.payload["spool_id"])
    row = session.get(SpooledMessage, spool_id)
    if row is None:
        return  # already made into a case by an earlier run
    ingest_raw(bytes(row.raw), channel="email", source=row.source, envelope_to=list(row.envelope_to) or None)
    with write_session() as ws:
        ws.execute(delete(SpooledMessage).where(SpooledMessage.id == spool_id))  # type: ignore[arg-type]
