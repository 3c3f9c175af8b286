"""The weekly candidate training (`ai.train_candidate`, scheduled by casemgr.worker.SCHEDULES).

It trains, compares and writes the report; it never activates anything (a governance lead requests that and
a second one approves it). Training runs outside any write transaction: the job has its own transactions and
a long lease (the ensemble recipe takes minutes on a busy host). When the reviewed examples and the model in force
are the same as for the latest candidate, nothing is trained (a worker restart in the same week costs nothing).
"""

from __future__ import annotations

from typing import Any

from casemgr.jobs.service import job_handler
from casemgr.learning.enums import TRAIN_JOB


@job_handler(TRAIN_JOB, own_transactions=True, long_lease=True)
def train_candidate_job(session: Any, job: Any) -> None:
    from casemgr.learning.candidates import train_candidate

    train_candidate(actor="worker", skip_unchanged=True)
