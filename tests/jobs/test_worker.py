"""The worker: claims with a lease, runs handlers in a write transaction, retries with backoff, survives SIGKILL,
and two workers on one PostgreSQL run each of 1,000 jobs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select, text

from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.jobs import service as jobs
from casemgr.jobs.models import Job
from casemgr.worker import Worker

from .effect_handlers import EFFECTS_DDL, effect_file

ROOT = Path(__file__).resolve().parents[2]
PG = bool(os.environ.get("CASEMGR_TEST_DATABASE_URL"))


@pytest.fixture(autouse=True)
def effects_table():  # type: ignore[no-untyped-def]
    with write_session() as s:
        s.execute(text(EFFECTS_DDL))
        s.execute(text("DELETE FROM job_effects"))
    yield
    if PG:
        with write_session() as s:
            s.execute(text("DROP TABLE IF EXISTS job_effects"))


def _enqueue(n: int, **payload) -> list[int]:  # type: ignore[no-untyped-def]
    with write_session() as s:
        return [jobs.enqueue(s, "test.effect", dict(payload)).id for _ in range(n)]


def _effects() -> dict[int, int]:
    with read_session() as s:
        rows = s.execute(text("SELECT job_id, count(*) FROM job_effects GROUP BY job_id")).all()
    return {int(a): int(b) for a, b in rows}


def _statuses() -> dict[str, int]:
    with read_session() as s:
        return jobs.counts(s)


def test_worker_runs_due_jobs_once_and_leaves_future_jobs() -> None:
    ids = _enqueue(5)
    with write_session() as s:
        later = jobs.enqueue(s, "test.effect", {}, run_at=now() + timedelta(hours=1)).id
    stats = Worker(schedule=False).run(once=True)
    assert stats["done"] == 5
    assert _effects() == {i: 1 for i in ids}
    with read_session() as s:
        assert s.get(Job, later).status == "queued"
        assert all(s.get(Job, i).status == "done" for i in ids)


def test_idempotency_key_gives_one_job() -> None:
    with write_session() as s:
        a = jobs.enqueue(s, "test.effect", {}, idempotency_key="k1")
        b = jobs.enqueue(s, "test.effect", {}, idempotency_key="k1")
    assert a.id == b.id


def test_failure_retries_with_backoff_then_succeeds_and_failures_leave_no_side_effects() -> None:
    [jid] = _enqueue(1, fail_until_attempt=2)
    w = Worker(schedule=False)
    w.run(once=True)
    with read_session() as s:
        job = s.get(Job, jid)
        assert job.status == "failed" and job.attempts == 1 and "planned failure" in job.last_error
        first_retry = job.run_at
    assert first_retry > now() + timedelta(seconds=3)
    assert _effects() == {}  # the failed attempt's insert rolled back with it
    w.run(once=True)  # not due yet: nothing happens
    assert _statuses().get("failed") == 1
    with time_machine.travel(first_retry + timedelta(seconds=1), tick=True):
        w.run(once=True)
        with read_session() as s:
            job = s.get(Job, jid)
            assert job.attempts == 2 and job.status == "failed"
            second_retry = job.run_at
    # Backoff doubles.
    assert (second_retry - first_retry) > timedelta(seconds=9)
    with time_machine.travel(second_retry + timedelta(seconds=1), tick=True):
        w.run(once=True)
    with read_session() as s:
        assert s.get(Job, jid).status == "done"
    assert _effects() == {jid: 1}


def test_job_goes_dead_after_max_attempts_and_unknown_kinds_fail() -> None:
    with write_session() as s:
        jid = jobs.enqueue(s, "test.effect", {"fail_until_attempt": 99}, max_attempts=2).id
        unknown = jobs.enqueue(s, "no.such.kind", {}).id
    w = Worker(schedule=False)
    w.run(once=True)
    with time_machine.travel(now() + timedelta(minutes=5), tick=True):
        w.run(once=True)
    with read_session() as s:
        assert s.get(Job, jid).status == "dead"
        u = s.get(Job, unknown)
        assert u.status == "failed" and "no handler registered" in u.last_error


def test_expired_lease_is_taken_over_and_the_old_holder_loses() -> None:
    [jid] = _enqueue(1)
    assert jobs.claim("A", lease_s=30) == [jid]
    assert jobs.claim("B", lease_s=30) == []  # leased
    with time_machine.travel(now() + timedelta(seconds=31), tick=True):
        assert jobs.claim("B", lease_s=30) == [jid]
        assert jobs.run_claimed(jid, "A") == "lost"
        assert jobs.run_claimed(jid, "B") == "done"
    assert _effects() == {jid: 1}
    with read_session() as s:
        assert s.get(Job, jid).attempts == 2


def test_worker_loads_every_rooms_handlers() -> None:
    from casemgr.jobs.service import HANDLERS
    from casemgr.worker import load_handlers, periodic_jobs

    load_handlers()
    assert {"sla.scan", "renewal.scan", "metrics.refresh", "jobs.prune", "ai.enrich", "mail.send"} <= set(HANDLERS)
    assert {k for k, _ in periodic_jobs()} == {"sla.scan", "renewal.scan", "metrics.refresh", "jobs.prune",
                                               "conformance.refresh", "ai.train_candidate",
                                               "rootcause.digest"}


def test_periodic_jobs_are_enqueued_once_per_window() -> None:
    assert jobs.schedule_periodic("test.effect", 3600) is True
    assert jobs.schedule_periodic("test.effect", 3600) is False
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Job)).scalar_one() == 1


def _worker_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "casemgr.cli", "worker", "--no-schedule", "--poll-seconds", "0.05",
            "--import", effect_file(), *extra]


def test_sigkill_mid_job_loses_nothing_and_runs_each_job_once(tmp_path: Path) -> None:
    started = tmp_path / "started.txt"
    ids = _enqueue(12, sleep=0.25, started_file=str(started))
    proc = subprocess.Popen(_worker_cmd("--lease-seconds", "2"), cwd=ROOT, env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if started.exists() and len(started.read_text().split()) >= 4:
                break
            time.sleep(0.01)
        else:
            pytest.fail(f"worker did not start jobs: {proc.stdout.read().decode() if proc.stdout else ''}")
        os.kill(proc.pid, signal.SIGKILL)  # mid-job: the 4th job is sleeping inside its transaction
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_job = int(started.read_text().split()[-1])
    with read_session() as s:
        assert s.get(Job, killed_job).status == "running"  # claimed, never committed
    assert killed_job not in _effects()
    # The dead worker's 2 s lease runs out on the clock (casemgr.clock), not by sleeping: a second worker,
    # 3 s later, takes the job over.
    with time_machine.travel(now() + timedelta(seconds=3), tick=True):
        Worker(schedule=False, lease_s=30).run(once=True)
    assert _effects() == {i: 1 for i in ids}
    assert _statuses() == {"done": len(ids)}
    assert started.read_text().split().count(str(killed_job)) == 2  # it really ran again


@pytest.mark.skipif(not PG, reason="needs PostgreSQL (CASEMGR_TEST_DATABASE_URL)")
def test_two_workers_on_postgresql_run_1000_jobs_exactly_once() -> None:
    with write_session() as s:
        s.execute(text(
            "INSERT INTO jobs (kind, payload, status, run_at, attempts, max_attempts, created_at) "
            "SELECT 'test.effect', '{}', 'queued', now() - interval '1 second', 0, 8, now() FROM generate_series(1, 1000)"
        ))
    procs = [subprocess.Popen(_worker_cmd("--once", "--concurrency", "3"), cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=170)
        assert p.returncode == 0, err
    effects = _effects()
    assert len(effects) == 1000 and set(effects.values()) == {1}
    assert _statuses() == {"done": 1000}
    with read_session() as s:
        workers = {w.split("/")[0] for (w,) in s.execute(text("SELECT DISTINCT worker FROM job_effects")).all()}
    assert len(workers) == 2  # both processes took a share


def test_own_transaction_handlers_write_in_short_transactions_of_their_own() -> None:
    with write_session() as s:
        jid = jobs.enqueue(s, "test.own_tx", {}).id
    # Had the worker held the write lock around the handler, the handler's own transaction would wait for it
    # until sqlite_busy_timeout_ms and fail: the job would not be done.
    assert Worker(schedule=False).run(once=True)["done"] == 1
    assert _effects() == {jid: 1}
    with read_session() as s:
        assert s.get(Job, jid).status == "done"


def test_embedded_worker_runs_jobs_inside_the_app_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from casemgr.runtime import rebuild
    from casemgr.web.app import create_app

    monkeypatch.setenv("CASEMGR_EMBEDDED_WORKER", "1")
    rebuild()
    ids = _enqueue(3)
    with TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_effects()) < 3:
            time.sleep(0.1)
    assert _effects() == {i: 1 for i in ids}
    with read_session() as s:  # the embedded worker also scheduled the periodic scans
        assert s.execute(select(func.count()).select_from(Job).where(Job.kind == "sla.scan")).scalar_one() >= 1


def test_only_long_lease_kinds_hold_their_lease_for_an_hour_while_running() -> None:
    """An own-transaction job keeps the worker's lease unless its kind asks for a long one (metrics.refresh):
    a worker killed mid-ai.enrich must not leave the job 'running' for an hour."""
    from datetime import UTC

    seen: dict[str, timedelta] = {}

    def recorder(kind: str):  # type: ignore[no-untyped-def]
        def handler(session, job) -> None:  # type: ignore[no-untyped-def]
            with read_session() as s:
                until = s.get(Job, job.id).locked_until
            seen[kind] = (until if until.tzinfo else until.replace(tzinfo=UTC)) - now()
        return handler

    for kind, long_lease in (("test.lease_worker", False), ("test.lease_long", True)):
        jobs.job_handler(kind, own_transactions=True, long_lease=long_lease)(recorder(kind))
    with write_session() as s:
        ids = {kind: jobs.enqueue(s, kind, {}).id for kind in ("test.lease_worker", "test.lease_long")}
    for kind, jid in ids.items():
        assert jobs.claim(f"w-{kind}", lease_s=30) == [jid]
        assert jobs.run_claimed(jid, f"w-{kind}") == "done"
    assert seen["test.lease_worker"] <= timedelta(seconds=30)
    assert seen["test.lease_long"] > timedelta(seconds=jobs.OWN_TRANSACTION_LEASE_S - 60)


def test_a_worker_process_settles_its_heap_between_jobs_and_an_embedded_one_does_not() -> None:
    """`casemgr worker` freezes what survives its first jobs (gc.freeze), so a full collection (60-120 ms of CPU
    with the local models loaded) no longer lands inside a write transaction; a worker inside another process
    (tests, the embedded worker) or with several slots leaves the heap alone."""
    import gc

    before = gc.get_freeze_count()
    _enqueue(3)
    Worker(schedule=False).run(once=True)
    assert gc.get_freeze_count() == before
    assert not Worker(schedule=False, settle_heap=True, concurrency=2).settle_heap
    _enqueue(3)
    try:
        Worker(schedule=False, settle_heap=True).run(once=True)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
    assert len(_effects()) == 6


@pytest.mark.parametrize("long_lane", [True, False])
def test_a_long_job_runs_in_the_long_lane_while_the_slot_runs_new_work(long_lane: bool) -> None:
    """A long-lease job (a 42 s conformance refresh at 1M cases, minutes of candidate training) used to hold the
    worker's one slot, so the AI enrichment of new intake waited for it. The long lane runs it beside the slot."""
    import threading

    started, release = threading.Event(), threading.Event()

    @jobs.job_handler("test.long", own_transactions=True, long_lease=True)
    def _long(session, job) -> None:  # type: ignore[no-untyped-def]
        started.set()
        release.wait(60)

    # poll_s=0: no timed wait between polls (under libfaketime, as in test_date_independence, a timed condition
    # wait may not return before it is signalled, and the idle slot would then sleep through the test).
    worker = Worker(schedule=False, poll_s=0.0, long_lane=long_lane)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test's own thread below
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    try:
        with write_session() as s:
            long_id = jobs.enqueue(s, "test.long", {}).id
        runner.start()
        assert started.wait(30), "the long job never started"
        ids = _enqueue(3)  # new work arrives while the long job runs
        deadline = time.monotonic() + (30 if long_lane else 1.5)
        while set(_effects()) != set(ids) and time.monotonic() < deadline:
            time.sleep(0.02)
        with read_session() as s:
            assert s.get(Job, long_id).status == "running"
        if long_lane:
            assert set(_effects()) == set(ids)  # done while the long job still runs
        else:
            assert _effects() == {}  # one slot: the new work waits for the long job
        release.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with read_session() as s:
                if s.get(Job, long_id).status == "done" and set(_effects()) == set(ids):
                    break
            time.sleep(0.02)
        with read_session() as s:
            assert s.get(Job, long_id).status == "done" and all(s.get(Job, i).status == "done" for i in ids)
    finally:
        release.set()
        worker.stop.set()
        runner.join(30)
        jobs.HANDLERS.pop("test.long", None)
        jobs.OWN_TRANSACTIONS.discard("test.long")
        jobs.LONG_LEASE.discard("test.long")
    assert not runner.is_alive() and errors == []
