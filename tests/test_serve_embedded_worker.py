"""`casemgr serve` on SQLite runs the worker in-process: queued jobs get done with no second process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from casemgr.cases import service as cases
from casemgr.cases.schemas import CaseCreate
from casemgr.db import read_session, write_session
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue

pytestmark = pytest.mark.sqlite_only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_queued_jobs_in_process(fresh_db: Path) -> None:
    with write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type="complaint", subject="card charged twice",
                                               description="my credit card was charged twice"), actor="test")
        job = enqueue(s, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")
        job_id = job.id
    env = {k: v for k, v in os.environ.items() if k != "CASEMGR_EMBEDDED_WORKER"}
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "casemgr.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            with read_session() as s:
                status = s.execute(select(Job.status).where(Job.id == job_id)).scalar_one()
            if status == "done":
                break
            time.sleep(0.5)
        assert status == "done"
        with read_session() as s:
            assert cases.get_case(s, case.id or 0).ai_status in ("ok", "unavailable")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
