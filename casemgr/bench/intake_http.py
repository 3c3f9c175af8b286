"""`casemgr bench intake` (HTTP path): cases/s end to end vs a bare-insert floor, and the AI backlog drain rate.

End to end = POST /api/intake on `casemgr serve` (uvicorn, uvloop + httptools, N workers) → API key check →
stored message + case, routed by rules, audit events written, AI enrichment inline or queued for the worker.
The floor is casemgr.bench.floor under the same uvicorn settings against the same database, measured in the same
run by the same load generator (32 keep-alive connections by default).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from casemgr.bench import loadgen, paired, serving
from casemgr.bench.serving import bench_database

BODIES = [
    "My credit card was charged twice for the same purchase and the refund never arrived.",
    "The debt collector keeps calling me about a loan I already paid off in full last year.",
    "My mortgage payment was applied to the wrong account and now I have a late fee of $45.",
    "There is an error on my credit report that the bureau refuses to correct after three disputes.",
    "The bank closed my checking account without notice and kept my balance of $1,250.",
]


def body_of(i: int) -> str:
    """Message i's text: one of BODIES made unique (a reference number), so no cache in the AI path serves one
    case from another's work, which real traffic would not allow either."""
    return f"{BODIES[i % len(BODIES)]} My reference is {i}."


def make_api_key(scopes: list[str]) -> str:
    from casemgr.db import write_session
    from casemgr.users import service as users

    with write_session() as s:
        _, secret = users.create_api_key(s, f"bench-{uuid.uuid4().hex[:8]}", None, scopes, actor="system:bench")
    return secret


def intake_body(i: int, tag: str) -> bytes:
    return json.dumps({
        "subject": f"Problem report {tag} {i}", "body": body_of(i),
        "sender": {"name": f"Customer {i}", "email": f"customer{i}@example.org"},
        "external_id": f"{tag}-{i}-{uuid.uuid4().hex}",
    }).encode()


def _requests(port: int, path: str, key: str | None, tag: str) -> Any:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-API-Key"] = key
    host = f"127.0.0.1:{port}"
    return lambda i: loadgen.build_request("POST", path, host=host, headers=headers, body=intake_body(i, tag))


def _warm(port: int, path: str, key: str | None, tag: str, n: int, clients: int) -> None:
    if n:
        loadgen.run("127.0.0.1", port, _requests(port, path, key, f"warm-{tag}"), n=n, concurrency=clients)


def _round(port: int, path: str, key: str | None, tag: str, side: str, first: int, count: int,
           clients: int) -> paired.Round:
    make = _requests(port, path, key, tag)
    res = loadgen.run("127.0.0.1", port, lambda i: make(first + i), n=count, concurrency=clients)
    return paired.Round(side, count, res.ok, res.elapsed_s, res.latencies_ms, res.n - res.ok)


def _ai_jobs(status: tuple[str, ...] = ("queued", "failed", "running")) -> int:
    from sqlalchemy import func, select
    from sqlmodel import col

    from casemgr.db import read_session
    from casemgr.jobs.models import Job

    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Job)
                             .where(col(Job.kind) == "ai.enrich", col(Job.status).in_(status))).scalar_one())


def _make_backlog(n: int) -> None:
    """Cases whose AI work is queued (what intake leaves behind when AI is not inline)."""
    from casemgr.config import get_settings
    from casemgr.intake.service import Submission, ingest_submission

    settings = get_settings()
    saved = settings.ai_inline
    settings.ai_inline = False
    try:
        for i in range(n):
            ingest_submission(Submission(channel="api", case_type="complaint", subject=f"Backlog {i}",
                                         body=body_of(i), name=f"Customer {i}",
                                         email=f"backlog{i}@example.org", external_id=f"backlog-{uuid.uuid4().hex}"),
                              actor="apikey:bench")
    finally:
        settings.ai_inline = saved


def top_up_backlog(min_backlog: int) -> int:
    """Queue AI work for new cases until at least `min_backlog` AI jobs wait; returns how many wait."""
    if _ai_jobs() < min_backlog:
        _make_backlog(min_backlog - _ai_jobs())
    return _ai_jobs()


def _warm_up_models() -> None:
    """Load the AI models the way a worker does once at start (not part of the drain: it is start-up)."""
    from casemgr.governance.enrich import get_provider, is_local

    provider = get_provider()
    if is_local(provider):
        provider.classify_batch([BODIES[0]])
        provider.summarize(BODIES[0])


def measure_drain(min_backlog: int, limit: int | None = None) -> dict[str, Any]:
    """How fast one worker (in this process, one slot) drains queued AI enrichment jobs, on its own.

    Run after the intake load stopped, so nothing else competes for the database or the CPU. Tops the backlog
    up to `min_backlog`, loads the models and runs a first batch (a worker's start-up, not timed), then runs jobs
    until `limit` (default: min_backlog) more AI jobs are done or the queue is empty; the rate is that of the
    timed part. Other due jobs (acknowledgement mail) run too, as they would in production.
    """
    import gc
    import logging

    from casemgr import gcpolicy
    from casemgr.worker import Worker, load_handlers

    limit = limit or min_backlog
    backlog = top_up_backlog(min_backlog)
    load_handlers()
    _warm_up_models()
    worker = Worker(schedule=False, name="bench-drain")
    jobs_log = logging.getLogger("casemgr.jobs")
    level = jobs_log.level
    jobs_log.setLevel(logging.ERROR)  # e.g. "no SMTP relay configured" for every acknowledgement
    thresholds = gc.get_threshold()
    gcpolicy.tune_long_running_process()  # as `casemgr worker` runs (casemgr.worker.run_worker)
    try:
        # The first batch is start-up too (rules, policy and macros are built on first use, some modules imported):
        # untimed, as measure_drain_workers times from the first finished job.
        while _ai_jobs() >= backlog and worker.run_one():
            pass
        first_left = _ai_jobs()
        t0 = time.perf_counter()
        c0 = time.process_time()
        while first_left - _ai_jobs() < limit and worker.run_one():
            pass
    finally:
        jobs_log.setLevel(level)
        gc.set_threshold(*thresholds)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    left = _ai_jobs()
    timed = first_left - left
    return {"ai_backlog": backlog, "ai_drained": backlog - left, "ai_drain_timed": timed,
            "ai_drain_per_s": round(timed / elapsed, 1) if timed and elapsed > 0 else None,
            "ai_drain_cpu_ms_per_case": round(cpu * 1000 / timed, 2) if timed else None,
            "worker_stats": worker.stats}


def measure_drain_workers(workers: int, limit: int, env: dict[str, str] | None = None,
                          timeout_s: float = 600.0) -> dict[str, Any]:
    """`workers` separate `casemgr worker` processes on the queued AI backlog: jobs/s from the first finished
    job until `limit` jobs are done (each process loads its models first; that start-up is not timed)."""
    from contextlib import ExitStack

    backlog = _ai_jobs()
    limit = min(limit, backlog)
    with ExitStack() as stack:
        for _ in range(workers):
            stack.enter_context(serving.process(serving.worker_args(), dict(env or {})))
        deadline = time.monotonic() + timeout_s
        t_first = None
        while time.monotonic() < deadline:
            left = _ai_jobs()
            if t_first is None and left < backlog:
                t_first, first_left = time.perf_counter(), left
            if backlog - left >= limit:
                break
            time.sleep(0.05)
        t_end = time.perf_counter()
    if t_first is None or t_end <= t_first:
        return {"workers": workers, "ai_drained": 0, "ai_drain_per_s": None}
    done = first_left - left
    return {"workers": workers, "ai_drained": backlog - left, "ai_drain_per_s": round(done / (t_end - t_first), 1)}


def measure_api(n: int = 2000, clients: int = 32, workers: int = 1, warmup: int = 200,
                env: dict[str, str] | None = None, pairs: int = 4) -> dict[str, Any]:
    """Floor and intake, each on its own server process(es), both up at once and measured in alternating
    rounds (casemgr.bench.paired: ABBA order, ratio = median of the per-pair ratios), against the database
    configured now. Rounds are at least 500 requests: each round starts and drains its `clients` connections,
    and on a short round that ramp would be a large share of it.

    Both servers inherit this process's environment (CASEMGR_DATA_DIR / CASEMGR_DATABASE_URL) plus `env`.
    """
    from contextlib import ExitStack

    from casemgr.bench import floor
    from casemgr.config import get_settings

    env = dict(env or {})
    floor.create_table()
    try:
        key = make_api_key(["intake"])
        floor_port, serve_port = serving.free_port(), serving.free_port()
        with ExitStack() as stack:
            stack.enter_context(serving.process(serving.floor_args(floor_port, workers), env, port=floor_port))
            stack.enter_context(serving.process(serving.serve_args(serve_port, workers), env, port=serve_port))
            # Each server warmed by at least one round's worth of requests, unmeasured: with 200, the floor's
            # first measured round still ran at half its later rate in two runs out of two (its pair's ratio
            # was the only one above 0.5), which flattered the path.
            pairs = paired.pairs_for(n, pairs, 500)
            warm = max(warmup, n // pairs) if warmup else 0
            _warm(floor_port, "/floor", None, "floor", warm, clients)
            _warm(serve_port, "/api/intake", key, "api", warm, clients)
            targets = {paired.FLOOR: (floor_port, "/floor", None, "floor"),
                       paired.PATH: (serve_port, "/api/intake", key, "api")}
            measured = paired.run_pairs(n, pairs, lambda side, first, count: _round(
                *targets[side], side, first, count, clients))
    finally:
        if not get_settings().is_sqlite:
            floor.drop_table()
    res = paired.summarise(measured)
    # A served app queues AI work for the worker unless CASEMGR_AI_INLINE is set (casemgr.web.asgi).
    ai_inline = env.get("CASEMGR_AI_INLINE", os.environ.get("CASEMGR_AI_INLINE", "false"))
    return {"path": "api", "n": n, "clients": clients, "workers": workers, **res,
            "ai_inline": ai_inline.lower() in ("1", "true", "yes")}


def run(n: int = 2000, clients: int = 32, workers: int = 1, database_url: str | None = None,
        warmup: int = 200, drain: int = 300) -> dict[str, Any]:
    """The whole intake benchmark in a throw-away database: API vs floor, then the worker's AI drain rate."""
    from casemgr.bench.env import environment

    with bench_database(database_url):
        environ = environment()
        api = measure_api(n, clients, workers, warmup)
        drained = measure_drain(drain) if drain else {}
    return {"bench": "intake", **{k: v for k, v in api.items() if k != "path"},
            **{k: v for k, v in drained.items() if k != "worker_stats"}, "env": environ}


def summary_line(res: dict[str, Any]) -> dict[str, Any]:
    """The stable contract line (issues 6 and 10)."""
    return {"bench": "intake", "cases_per_s": res["cases_per_s"], "floor_per_s": res["floor_per_s"],
            "ratio": res["ratio"], "p99_ms": res["p99_ms"]}


def table_rows(res: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("requests / clients / workers", f"{res['n']} / {res['clients']} / {res['workers']}"),
        ("intake cases/s", res["cases_per_s"]),
        ("floor inserts/s", res["floor_per_s"]),
        ("ratio (target >= 0.6)", res["ratio"]),
        ("intake p50/p95/p99 ms", f"{res['p50_ms']} / {res['p95_ms']} / {res['p99_ms']}  (target p99 <= 100)"),
        ("floor p50/p99 ms", f"{res['floor_p50_ms']} / {res['floor_p99_ms']}"),
        ("errors intake / floor", f"{res['errors']} / {res['floor_errors']}"),
        ("AI inline on request path", res["ai_inline"]),
        ("AI backlog drained/s (1 worker)", f"{res.get('ai_drain_per_s')} ({res.get('ai_drained')} jobs)"),
    ]
