"""`casemgr worker`: runs background jobs from the `jobs` table, and schedules the periodic ones.

Claiming uses a lease (casemgr.jobs.service.claim): on PostgreSQL `FOR UPDATE SKIP LOCKED`, so any number of
workers on any number of hosts share one queue; on SQLite claims are serialised by BEGIN IMMEDIATE.
A worker killed mid-job (even SIGKILL) loses nothing: its transaction never committed, the lease expires and
the job runs again. Handlers are idempotent.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from casemgr import gcpolicy, txnstats
from casemgr import runtime as runtime_module
from casemgr.jobs import service as jobs
from casemgr.jobs.service import HANDLERS, job_handler

if TYPE_CHECKING:
    from casemgr.runtime import Runtime

log = logging.getLogger(__name__)

# Every module whose import registers job handlers (@job_handler), in ONE list, with the kinds each registers.
# Each import must succeed: a missing or broken module stops the worker at start-up instead of leaving its
# jobs unrun. (`jobs.prune` is registered below, in this module.)
HANDLER_MODULES: tuple[str, ...] = (
    "casemgr.sla.jobs",  # sla.scan, renewal.scan
    "casemgr.metrics.jobs",  # metrics.refresh
    "casemgr.conformance.jobs",  # conformance.refresh
    "casemgr.rootcause.digest",  # rootcause.digest
    "casemgr.governance.jobs",  # ai.enrich
    "casemgr.intake.outbound",  # mail.send
    "casemgr.intake.spooljobs",  # intake.spool (messages `casemgr intake pipe` acknowledged)
    "casemgr.learning.jobs",  # ai.train_candidate (weekly; trains and reports, never activates)
)


def _calendar_every(field: str) -> Callable[[], float]:
    def every() -> float:
        from casemgr.sla.calendar import get_calendar

        return float(getattr(get_calendar().spec.scheduler, field))

    return every


def _setting_every(field: str) -> Callable[[], float]:
    def every() -> float:
        from casemgr.config import get_settings

        return float(getattr(get_settings(), field))

    return every


# Every periodic job the worker schedules itself, in ONE list: (kind, seconds between runs). The SLA and metrics
# intervals come from policies/sla-calendar.yaml.
SCHEDULES: tuple[tuple[str, Callable[[], float]], ...] = (
    ("sla.scan", _calendar_every("sla_scan_every_s")),
    ("renewal.scan", _calendar_every("renewal_scan_every_s")),
    ("metrics.refresh", _calendar_every("metrics_refresh_every_s")),
    ("conformance.refresh", _setting_every("conformance_refresh_every_s")),
    ("rootcause.digest", lambda: 7 * 24 * 3600.0),  # weekly; sends only when CASEMGR_ROOT_CAUSE_DIGEST_TO is set
    ("jobs.prune", lambda: 24 * 3600.0),
    ("ai.train_candidate", _setting_every("learning_train_every_s")),  # weekly by default (issue 21)
)


def _import_file(name: str) -> None:
    path = Path(name).resolve()
    spec = importlib.util.spec_from_file_location(f"casemgr_plugin_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def load_handlers(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Import every handler module; `extra` may name modules or .py files (plugins, tests). Any import error
    propagates, and a scheduled kind without a handler is an error too."""
    for name in (*HANDLER_MODULES, *extra):
        if name.endswith(".py"):
            _import_file(name)
        else:
            importlib.import_module(name)
    unhandled = [kind for kind, _ in SCHEDULES if kind not in HANDLERS]
    if unhandled:
        raise RuntimeError(f"periodic jobs without a handler: {', '.join(unhandled)}; add their module to "
                           "casemgr.worker.HANDLER_MODULES")
    return [*HANDLER_MODULES, *extra]


PRUNE_CHUNK = 2000  # done jobs deleted per write transaction at most (issue 23: short transactions)
PRUNE_FIRST_CHUNK = 200  # then sized by the time the last chunk took


@job_handler("jobs.prune", own_transactions=True)
def _prune(session: Any, job: Any) -> None:
    """Delete done jobs older than a week (dead jobs stay for inspection), a chunk per short write transaction: a
    busy week leaves hundreds of thousands. Idempotent."""
    from datetime import timedelta

    from sqlalchemy import delete, select
    from sqlmodel import col

    from casemgr.clock import now
    from casemgr.db import read_session, write_session
    from casemgr.jobs.models import Job

    cutoff = now() - timedelta(days=float(job.payload.get("older_than_days", 7)))
    chunk = PRUNE_FIRST_CHUNK
    while True:
        with read_session() as rs:
            ids = list(rs.execute(select(col(Job.id)).where(col(Job.status) == "done", col(Job.finished_at) < cutoff,
                                                           col(Job.id) != job.id).limit(chunk)).scalars())
        if not ids:
            return
        with write_session() as ws:
            started = time.monotonic()
            ws.execute(delete(Job).where(col(Job.id).in_(ids), col(Job.status) == "done"))
            spent = time.monotonic() - started
        chunk = max(1, min(PRUNE_CHUNK, int(len(ids) * min(0.02 / max(spent, 1e-4), 2.0))))


def periodic_jobs() -> list[tuple[str, float]]:
    """(kind, interval in seconds) of every entry of SCHEDULES whose interval can be read."""
    out = []
    for kind, every in SCHEDULES:
        try:
            out.append((kind, every()))
        except Exception:  # an invalid calendar must not stop mail, AI and the other periodic jobs
            log.exception("cannot read the interval of %s; it is not scheduled", kind)
    return out


# Jobs after which a long-running worker settles its heap (`Worker._settle_heap`): the first runs load models,
# registries and compiled statements lazily; later runs add little that lives on.
SETTLE_AFTER_JOBS = frozenset(2 ** i for i in range(9))  # 1, 2, 4, ... 256


# The GIL's switch interval in a worker process of its own (Python's default: 5 ms). The long lane's rebuilds hold
# the GIL for whole intervals, while a slot's write transaction gives it up at every SQLite call and then waits up
# to an interval to get it back (the convoy effect): in the 1M soak the SLA scan's write transactions took 37 ms
# (p95) of wall time for 4.5 ms of CPU, and 260 ms at worst, while the lane ran. A shorter interval bounds each
# wait; the lane loses nothing but a few more switches.
SWITCH_INTERVAL_S = 0.0005


class Worker:
    """Slots (threads) that claim and run jobs, plus, unless it runs `once`, a *long lane*: one more thread that
    alone runs the long-lease kinds (jobs.LONG_LEASE: the dashboard and conformance rebuilds, candidate
    training), while the slots never claim them. A conformance refresh takes 42 s of CPU at 1M cases and a
    candidate trained with the ensemble minutes: in one slot, AI enrichment of new intake waited until it ended
    (issue 23: AI that keeps up with intake). Beside it, the two share the process's CPU, and enrichment goes on."""

    def __init__(self, *, concurrency: int = 1, lease_s: float = 120.0, poll_s: float = 0.5, schedule: bool = True,
                 name: str | None = None, settle_heap: bool = False, long_lane: bool = True) -> None:
        self.concurrency = max(1, concurrency)
        self.long_lane = long_lane
        self._lane_on = False  # set by run(): the long lane runs, so the slots leave its kinds to it
        self._long_busy = threading.Event()  # the long lane is running a job (the heap is not settled meanwhile)
        self._settle_due = False
        # Only a worker process of its own with one slot: a collection in one slot's thread would pause another
        # slot's transaction, and freezing a test process's objects would keep its cyclic garbage.
        self.settle_heap = settle_heap and self.concurrency == 1
        self._runs = 0
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.schedule = schedule
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stop = threading.Event()
        self.stats = {"done": 0, "retry": 0, "dead": 0, "lost": 0}
        self._stats_lock = threading.Lock()
        self._last_tick = 0.0
        load_handlers()  # every job it claims, and every periodic job tick() schedules, needs its handler here

    def tick(self) -> None:
        """Enqueue the periodic jobs that are due (at most one per window across all workers)."""
        if not self.schedule:
            return
        t = time.monotonic()
        if t - self._last_tick < 1.0:
            return
        self._last_tick = t
        for kind, every in periodic_jobs():
            try:
                jobs.schedule_periodic(kind, every)
            except Exception:
                log.exception("scheduling %s failed", kind)

    def run_one(self, slot: int = 0) -> bool:
        """Claim and run one job; False when nothing was due."""
        worker_id = f"{self.name}/{slot}"
        exclude = jobs.LONG_LEASE if self._lane_on else frozenset()
        for kind, (run_batch, size) in jobs.BATCH_HANDLERS.items():
            if kind in exclude:
                continue
            # Batched kinds first (AI enrichment): one claim, one model batch, one write transaction.
            batch = jobs.claim(worker_id, limit=size, lease_s=self.lease_s, kinds=(kind,))
            if batch:
                with txnstats.labelled(kind):
                    outcomes = run_batch(batch, worker_id)
                self._tally(outcomes)
                return True
        ids = jobs.claim(worker_id, limit=1, lease_s=self.lease_s, exclude=exclude)
        if not ids:
            return False
        self._tally({jobs.run_claimed(ids[0], worker_id): 1})
        return True

    def run_long_one(self) -> bool:
        """The long lane: claim and run one job of a long-lease kind; False when none was due."""
        worker_id = f"{self.name}/long"
        if not jobs.any_due(jobs.LONG_LEASE):  # its jobs come a few times an hour: poll without the write lock
            return False
        ids = jobs.claim(worker_id, limit=1, lease_s=self.lease_s, kinds=sorted(jobs.LONG_LEASE))
        if not ids:
            return False
        self._long_busy.set()
        try:
            outcome = jobs.run_claimed(ids[0], worker_id)
        finally:
            self._long_busy.clear()
        self._tally({outcome: 1})
        return True

    def _tally(self, outcomes: dict[str, int]) -> None:
        """Count a run's outcomes (slots and the lane count from their own threads) and pass on the stats file."""
        with self._stats_lock:
            for outcome, n in outcomes.items():
                self.stats[outcome] = self.stats.get(outcome, 0) + n
        self._dump_stats()

    def _long_loop(self) -> None:
        while not self.stop.is_set():
            try:
                if self.run_long_one():
                    continue
            except Exception:  # database away: back off and try again, never die
                log.exception("worker long lane: claim failed")
            self.stop.wait(self.poll_s)

    def _settle_heap(self) -> None:
        """Between jobs, after the 1st, 2nd, 4th ... 256th: collect, then freeze what survives (gc.freeze), so
        later full collections walk only the objects made since. A full (generation 2) collection of a worker
        walked ~110k objects after start-up and ~220k once the local models were loaded: 60-120 ms of CPU, which
        lands inside whichever write transaction allocates at that moment (issue 23: none longer than 50 ms).
        Here, between jobs, it holds no transaction."""
        self._runs += 1
        self._settle_due = self._settle_due or self._runs in SETTLE_AFTER_JOBS
        # Not while the long lane runs a job: the collection would pause its thread, maybe inside a write.
        if self.settle_heap and self._settle_due and not self._long_busy.is_set():
            gc.collect()
            gc.freeze()
            self._settle_due = False

    def _dump_stats(self, every_s: float = 2.0) -> None:
        """CASEMGR_TXN_STATS_FILE: the jobs' write-transaction lengths for `casemgr bench soak` (issue 23)."""
        from casemgr.config import get_settings

        path = get_settings().txn_stats_file
        if path:
            try:
                txnstats.dump(path, every_s=every_s)
            except OSError:
                log.exception("cannot write %s", path)

    def _loop(self, slot: int, once: bool) -> None:
        while not self.stop.is_set():
            try:
                if slot == 0:
                    self.tick()
                if self.run_one(slot):
                    self._settle_heap()
                    continue
            except Exception:  # database away: back off and try again, never die
                log.exception("worker slot %s: claim failed", slot)
            if once:
                return
            self.stop.wait(self.poll_s)

    def run(self, *, once: bool = False) -> dict[str, int]:
        # `once` (tests, `casemgr worker --once`) runs every due job in the slots, long ones included.
        self._lane_on = self.long_lane and not once and bool(jobs.LONG_LEASE)
        lane = threading.Thread(target=self._long_loop, name="worker-long", daemon=True) if self._lane_on else None
        if lane is not None:
            lane.start()
        try:
            if self.concurrency == 1:
                self._loop(0, once)
            else:
                threads = [threading.Thread(target=self._loop, args=(i, once), name=f"worker-{i}", daemon=True)
                           for i in range(self.concurrency)]
                for th in threads:
                    th.start()
                for th in threads:
                    while th.is_alive():
                        th.join(0.2)
        finally:
            if lane is not None:
                self.stop.set()  # the lane stops with the slots (it finishes the job it runs)
                while lane.is_alive():
                    lane.join(0.2)
        self._dump_stats(every_s=0.0)
        return dict(self.stats)


def run_worker(*, once: bool = False, concurrency: int = 1, lease_s: float = 120.0, poll_s: float = 0.5,
               schedule: bool = True, extra_modules: list[str] | tuple[str, ...] = (),
               parent_pid: int | None = None, runtime: Runtime | None = None, settle_heap: bool = False
               ) -> dict[str, int]:
    """Run the worker in `runtime` (default: the process's context, casemgr.runtime.current()); its jobs reach
    the same context through casemgr.runtime.current(). `settle_heap`: the process is the worker's own
    (`casemgr worker`), see Worker._settle_heap."""
    if runtime is not None:
        runtime_module.install(runtime)
    else:
        runtime_module.current()
    load_handlers(extra_modules)
    if settle_heap:  # the process is the worker's own: its collector's schedule is ours to set (casemgr.gcpolicy)
        gcpolicy.tune_long_running_process()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    worker = Worker(concurrency=concurrency, lease_s=lease_s, poll_s=poll_s, schedule=schedule,
                    settle_heap=settle_heap)
    if parent_pid:
        _stop_when_orphaned(worker, parent_pid)

    def _graceful(signum: int, _frame: Any) -> None:
        # SIGTERM/SIGINT: finish the running jobs, claim no more.
        worker.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)
    log.info("worker %s started (%d slots, handlers: %s)", worker.name, worker.concurrency, ", ".join(sorted(HANDLERS)))
    return worker.run(once=once)


def _stop_when_orphaned(worker: Worker, parent_pid: int) -> None:
    """A worker started by `casemgr serve` stops (finishing its running jobs) when serve is gone, even if serve
    was killed and could not stop it."""

    def watch() -> None:
        while not worker.stop.wait(1.0):
            if os.getppid() != parent_pid:
                log.warning("worker %s: parent process %d is gone; stopping", worker.name, parent_pid)
                worker.stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class WorkerProcess:
    """One `casemgr worker` child process of `casemgr serve`, restarted if it dies.

    A separate process rather than a thread in the app: AI enrichment is CPU work that would otherwise compete
    with request handling for the app's GIL, and the AI model would sit in every app worker's memory (issue 10).
    """

    RESTART_DELAY_S = 2.0

    def __init__(self, args: list[str] | None = None) -> None:
        self.args = args or [sys.executable, "-m", "casemgr.cli", "worker", "--parent-pid", str(os.getpid())]
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._spawn_lock = threading.Lock()  # stop() and a restart never interleave: no child outlives stop()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args)
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            assert self.proc is not None
            code = self.proc.wait()
            if self._stopping.wait(self.RESTART_DELAY_S):
                return
            with self._spawn_lock:
                if self._stopping.is_set():
                    return
                log.error("casemgr worker exited with %s; starting a new one", code)
                self.restarts += 1
                self.proc = subprocess.Popen(self.args)

    def stop(self, timeout_s: float = 30.0) -> None:
        with self._spawn_lock:
            self._stopping.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # finishes running jobs, claims no more
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()  # its claims' leases expire; another worker runs those jobs again
                proc.wait(5)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)


def install_embedded(app: Any) -> None:
    """With CASEMGR_EMBEDDED_WORKER=1 the app process runs a worker thread (one per app process): a single-host
    SQLite deployment needs no second process for SLA scans, renewals and retries. Claims stay leased, so
    several app processes (or extra `casemgr worker` processes) still run each job once."""
    from casemgr.config import get_settings

    if not get_settings().embedded_worker:
        return
    holder: dict[str, Any] = {}

    def start() -> None:
        load_handlers()
        worker = Worker(concurrency=1)
        thread = threading.Thread(target=worker.run, name="embedded-worker", daemon=True)
        holder["worker"], holder["thread"] = worker, thread
        thread.start()

    def stop() -> None:
        if "worker" in holder:
            holder["worker"].stop.set()
            holder["thread"].join(30)

    app.router.on_startup.append(start)
    app.router.on_shutdown.append(stop)


def cli(
    once: bool = typer.Option(False, "--once", help="Run the jobs that are due now, then exit."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, max=64, help="Jobs run in parallel (threads)."),
    lease: float = typer.Option(120.0, "--lease-seconds", min=1, help="How long a claim lasts if the worker dies."),
    poll: float = typer.Option(0.5, "--poll-seconds", min=0.01, help="Sleep when the queue is empty."),
    schedule: bool = typer.Option(True, "--schedule/--no-schedule", help="Enqueue periodic SLA/renewal/metrics jobs."),
    imports: list[str] = typer.Option([], "--import", help="Extra handler module or .py file (repeatable)."),
    parent_pid: int = typer.Option(0, "--parent-pid", hidden=True, help="Stop when this process is gone."),
) -> None:
    """Run background jobs: SLA scans and escalations, renewal reminders, AI retries, outbound mail."""
    import json

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stats = run_worker(once=once, concurrency=concurrency, lease_s=lease, poll_s=poll, schedule=schedule,
                       extra_modules=imports, parent_pid=parent_pid or None, settle_heap=not once)
    typer.echo(json.dumps({"worker": "stopped", **stats}))
