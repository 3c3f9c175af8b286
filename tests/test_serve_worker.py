"""`casemgr serve` on SQLite runs the jobs too: it starts one supervised `casemgr worker` process.

Queued jobs get done with no second command; the worker is restarted if it dies and stops when serve is gone,
even if serve was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import select

from casemgr.bench.serving import free_port
from casemgr.cases import service as cases
from casemgr.cases.schemas import CaseCreate
from casemgr.db import read_session, write_session
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue

pytestmark = pytest.mark.sqlite_only



def _queued_ai_job() -> tuple[int, int]:
    with write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type="complaint", subject="card charged twice",
                                               description="my credit card was charged twice"), actor="test")
        job = enqueue(s, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")
        return int(case.id or 0), int(job.id or 0)


def _until(check: Callable[[], bool], timeout_s: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def _job_done(job_id: int) -> bool:
    with read_session() as s:
        return s.execute(select(Job.status).where(Job.id == job_id)).scalar_one() == "done"


def _workers_of(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "worker" in " ".join(_cmdline(c))]


def _cmdline(proc: psutil.Process) -> list[str]:
    # A killed worker is a zombie until the supervisor reaps it, and it may be gone between children() and here:
    # neither is a live worker (psutil.ZombieProcess is a NoSuchProcess).
    try:
        return proc.cmdline()
    except psutil.NoSuchProcess:
        return []


@pytest.fixture
def served(fresh_db: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != "CASEMGR_EMBEDDED_WORKER"}
    proc = subprocess.Popen([sys.executable, "-m", "casemgr.cli", "serve", "--port", str(free_port())], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_serve_runs_queued_jobs(served: subprocess.Popen[bytes]) -> None:
    case_id, job_id = _queued_ai_job()
    assert _until(lambda: _job_done(job_id))
    with read_session() as s:
        assert cases.get_case(s, case_id).ai_status in ("ok", "unavailable")
    # The AI model lives in the worker process, not in the app process that serves requests.
    assert len(_workers_of(served.pid)) == 1


def test_a_dead_worker_is_replaced_and_a_killed_serve_takes_its_worker_along(served: subprocess.Popen[bytes]) -> None:
    assert _until(lambda: len(_workers_of(served.pid)) == 1, 60)
    first = _workers_of(served.pid)[0]
    first.kill()
    assert _until(lambda: [w.pid for w in _workers_of(served.pid)] not in ([], [first.pid]), 30)
    _, job_id = _queued_ai_job()
    assert _until(lambda: _job_done(job_id))  # the new worker does the work
    second = _workers_of(served.pid)[0]
    served.send_signal(signal.SIGKILL)
    served.wait(10)
    assert _until(lambda: not second.is_running() or second.status() == psutil.STATUS_ZOMBIE, 30)


def test_stopping_the_supervisor_leaves_no_worker_behind() -> None:
    """stop() while the supervisor is restarting a worker that just exited: no worker may start after it."""
    import random

    from casemgr.worker import WorkerProcess

    rng = random.Random(7)
    for _ in range(60):
        wp = WorkerProcess(["/bin/sh", "-c", "exit 0"])  # exits at once, so stop() keeps landing mid-restart
        wp.RESTART_DELAY_S = 0.0
        wp.start()
        time.sleep(rng.uniform(0.0, 0.02))
        wp.stop(timeout_s=5)
        last, restarts = wp.proc, wp.restarts
        time.sleep(0.03)
        assert (wp.proc, wp.restarts) == (last, restarts), "a worker was started after stop()"
        assert wp._thread is not None and not wp._thread.is_alive()
