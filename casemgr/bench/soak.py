"""`casemgr bench soak`: mixed agent traffic and intake at N cases for M minutes while the worker's scans run.

The database gets N generated cases (as `bench dashboard` loads them) plus the demo's users and cases; then
`casemgr serve` (app workers) and `casemgr worker` processes (SLA and renewal scans, metrics refresh, AI
enrichment of the new intake, on their normal schedules, plus one full metrics refresh and one scan queued at
the start so they overlap the traffic) run while the locust scenario of `bench load` sends queue and case
pages, agent updates and API intake. Latency is what the clients see (wall time on loopback), overall and per
minute: the targets (API intake p99 <= 200 ms, queue page p95 <= 50 ms) must hold in every minute.

`--data-dir` reuses a SQLite data dir that already holds the cases (a 1M-case load takes minutes to an hour on
a loaded host); it is migrated first and changed by the run (work on a copy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from casemgr.bench import serving
from casemgr.bench.load import LOCUSTFILE, parse_stats
from casemgr.bench.loadgen import percentile
from casemgr.bench.serving import bench_database

INTAKE = "POST /api/intake"
QUEUE = "GET /queue"
TARGETS = {"intake_p99_ms": 200.0, "queue_p95_ms": 50.0}


def _case_count() -> int:
    from sqlalchemy import text

    from casemgr.db import read_session

    with read_session() as s:
        return int(s.execute(text("SELECT count(*) FROM cases")).scalar_one())


def _settle() -> dict[str, Any]:
    """Bring a freshly loaded database to the steady state a live one is in before the traffic: every finished visit
    in the rollups and the live counters counted. A bulk load writes millions of visits no refresh has seen, and
    the catch-up (4.5M visits claimed at 1M cases) is a one-off after an import, not the steady state the soak
    measures; the full rebuild queued at the start still recounts all of them during the traffic."""
    from casemgr.metrics import rollup, service

    t0 = time.monotonic()
    stats = rollup.roll_pending(duty=1.0)
    if stats["visits"]:
        service.refresh_in_steps(rolled=stats["visits"])
    return {"visits_rolled": stats["visits"], "settle_s": round(time.monotonic() - t0, 1)}


def _kick_background_work() -> None:
    """A full metrics refresh and one SLA/renewal scan queued now, so they run while the traffic runs."""
    from datetime import timedelta

    from casemgr.clock import now
    from casemgr.db import write_session
    from casemgr.jobs.service import enqueue

    stamp = int(time.time())
    first = now() - timedelta(days=1)  # ahead of the demo seed's AI backlog in the worker's run_at order
    with write_session() as s:
        enqueue(s, "metrics.refresh", {"full": True}, run_at=first, idempotency_key=f"soak:metrics:{stamp}")
        enqueue(s, "sla.scan", {}, run_at=first, idempotency_key=f"soak:sla:{stamp}")
        enqueue(s, "renewal.scan", {}, run_at=first, idempotency_key=f"soak:renewal:{stamp}")


def _wait_started(logs: list[Path], timeout_s: float = 180.0) -> None:
    """Traffic starts once every worker has started (imports, schedules): the soak measures the steady state."""
    deadline = time.monotonic() + timeout_s
    while not all(p.exists() and " started " in p.read_text(errors="replace") for p in logs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"casemgr worker did not start within {timeout_s:.0f} s: see {logs[0].parent}")
        time.sleep(0.5)


def _worst(minutes: list[dict[str, Any]], name: str, key: str) -> float | None:
    """The worst minute; the first minute (start-up: imports, caches, pools) counts only in a run that short."""
    rows = [m for m in minutes if m["name"] == name]
    later = [m for m in rows if m["minute"] > 0]
    return max((m[key] for m in (later or rows)), default=None)


def run(cases: int, minutes: float, *, users: int = 16, workers: int = 1, job_workers: int = 1,
        database_url: str | None = None, data_dir: str | None = None) -> dict[str, Any]:
    from casemgr.bench.dashboard import load
    from casemgr.bench.env import environment
    from casemgr.bench.load import seed

    seconds = int(minutes * 60)
    with bench_database(database_url, data_dir=data_dir) as env:
        environ = environment()
        # Generated ids start at 1: load only into an empty database (a reused data dir keeps its cases).
        have = _case_count()
        if 0 < have < cases:
            raise RuntimeError(f"the database holds {have} cases, fewer than --cases {cases}: use an empty database "
                               "(it is filled) or one that already holds them")
        load_s = round(load(cases), 1) if have == 0 else 0.0
        agent_key, intake_key, ids = seed()
        total_cases = _case_count()
        settled = _settle()
        _kick_background_work()
        # A data dir copied or loaded just before holds gigabytes of dirty pages at 1M cases: written out before the
        # traffic starts, so the kernel's write-back (which every commit's fsync would wait behind) is not measured.
        os.sync()
        port = serving.free_port()
        out_dir = Path(tempfile.mkdtemp(prefix="casemgr-soak-"))
        result_file = out_dir / "extra.json"
        locust_env = {**os.environ, **env, "CASEMGR_LOAD_AGENT_KEY": agent_key, "CASEMGR_LOAD_INTAKE_KEY": intake_key,
                      "CASEMGR_LOAD_CASE_IDS": ",".join(map(str, ids)), "CASEMGR_LOAD_RESULT": str(result_file),
                      "CASEMGR_LOAD_WAIT_S": os.environ.get("CASEMGR_LOAD_WAIT_S", "0.5")}
        load_before = os.getloadavg()[0]
        from casemgr.clock import now

        traffic_from = now()
        with ExitStack() as stack:
            stack.enter_context(serving.process(serving.serve_args(port, workers), env, port=port))
            for i in range(job_workers):
                # Each worker reports how long its jobs held write transactions (casemgr/txnstats.py).
                stack.enter_context(serving.process([str(serving.BIN / "casemgr"), "worker"],
                                                    {**env, "CASEMGR_TXN_STATS_FILE": str(out_dir / f"txn-{i}.json")},
                                                    log=out_dir / f"worker-{i}.log"))
            _wait_started([out_dir / f"worker-{i}.log" for i in range(job_workers)])
            cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
                   "-u", str(users), "-r", str(max(users, 1)), "-t", f"{seconds}s",
                   "--host", f"http://127.0.0.1:{port}", "--csv", str(out_dir / "soak"), "--loglevel", "WARNING",
                   "--exit-code-on-error", "0", "--stop-timeout", "10"]
            proc = subprocess.run(cmd, env=locust_env, capture_output=True, text=True, timeout=seconds + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"locust exited with {proc.returncode}: {proc.stderr[-2000:]}")
        stats = parse_stats(out_dir / "soak_stats.csv")
        extra = json.loads(result_file.read_text()) if result_file.exists() else {}
        jobs = _job_summary()
        ai_wait = _ai_wait(traffic_from)
        write_txn = _txn_summary(out_dir, job_workers)
    by_name = stats["by_name"]
    per_minute = extra.get("minutes", [])
    intake = by_name.get(INTAKE, {})
    queue = by_name.get(QUEUE, {})
    res: dict[str, Any] = {
        "bench": "soak", "cases": total_cases, "loaded_s": load_s, **settled, "minutes": minutes, "users": users,
        "app_workers": workers, "job_workers": job_workers,
        "requests": stats["total"].get("n", 0), "failures": stats["total"].get("failures", 0),
        "rps": stats["total"].get("rps"),
        "intake_n": intake.get("n"), "intake_p99_ms": intake.get("p99_ms"),
        "queue_n": queue.get("n"), "queue_p95_ms": queue.get("p95_ms"),
        "worst_minute_intake_p99_ms": _worst(per_minute, INTAKE, "p99_ms"),
        "worst_minute_queue_p95_ms": _worst(per_minute, QUEUE, "p95_ms"),
        "targets": TARGETS, "jobs": jobs, "ai_wait_s": ai_wait, "write_txn_ms": write_txn,
        "per_minute": [m for m in per_minute if m["name"] in (INTAKE, QUEUE)],
        "load_avg_1m_before": round(load_before, 1), "load_avg_1m_after": round(os.getloadavg()[0], 1),
        "database": environ.get("database"), "by_name": by_name, "env": environ,
    }
    res["intake_ok"] = bool(res["worst_minute_intake_p99_ms"] is not None
                            and res["worst_minute_intake_p99_ms"] <= TARGETS["intake_p99_ms"])
    res["queue_ok"] = bool(res["worst_minute_queue_p95_ms"] is not None
                           and res["worst_minute_queue_p95_ms"] <= TARGETS["queue_p95_ms"])
    return res


def _txn_summary(out_dir: Path, job_workers: int) -> dict[str, dict[str, Any]]:
    """Write-transaction length per background job kind over every worker: n, max_ms, p95_ms, over_50ms."""
    from casemgr import txnstats

    snaps = [json.loads(p.read_text()) for p in (out_dir / f"txn-{i}.json" for i in range(job_workers)) if p.exists()]
    return txnstats.merge(snaps)


def _job_summary() -> dict[str, dict[str, int]]:
    """Jobs by kind and status after the run: the background work really ran (done) and did not fail."""
    from sqlalchemy import text

    from casemgr.db import read_session

    with read_session() as s:
        rows = s.execute(text("SELECT kind, status, count(*) FROM jobs GROUP BY kind, status")).all()
    out: dict[str, dict[str, int]] = {}
    for kind, status, n in rows:
        out.setdefault(str(kind), {})[str(status)] = int(n)
    return out


def _ai_wait(since: Any) -> dict[str, Any]:
    """How long the cases that arrived during the traffic waited for their AI enrichment (job created -> done),
    in seconds: until then they are routed on rules alone (issue 23: AI that keeps up with intake)."""
    from sqlalchemy import select
    from sqlmodel import col

    from casemgr.db import read_session
    from casemgr.jobs.models import Job

    with read_session() as s:
        rows = s.execute(select(col(Job.created_at), col(Job.finished_at), col(Job.status))
                         .where(col(Job.kind) == "ai.enrich", col(Job.created_at) >= since)).all()
    waits = [(done - made).total_seconds() for made, done, status in rows if status == "done" and done]
    if not waits:
        return {"n": 0, "not_done": len(rows)}
    return {"n": len(waits), "not_done": len(rows) - len(waits), "p50_s": round(percentile(waits, 50), 2),
            "p99_s": round(percentile(waits, 99), 2), "max_s": round(max(waits), 2)}


def table_rows(res: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("cases / minutes / users", f"{res['cases']} / {res['minutes']} / {res['users']}"),
        ("requests (req/s), failures", f"{res['requests']} ({res['rps']}), {res['failures']}"),
        ("API intake p99 (worst minute)", f"{res['intake_p99_ms']} ({res['worst_minute_intake_p99_ms']}) ms, "
                                          f"target {TARGETS['intake_p99_ms']}"),
        ("queue page p95 (worst minute)", f"{res['queue_p95_ms']} ({res['worst_minute_queue_p95_ms']}) ms, "
                                          f"target {TARGETS['queue_p95_ms']}"),
        ("AI enrichment wait p50 / p99 / max", f"{res['ai_wait_s'].get('p50_s')} / {res['ai_wait_s'].get('p99_s')} / "
                                               f"{res['ai_wait_s'].get('max_s')} s ({res['ai_wait_s'].get('n')} cases)"),
        ("background jobs", ", ".join(f"{k}: {v}" for k, v in sorted(res["jobs"].items()))),
        ("write txn max / p95 ms per job", ", ".join(f"{k}: {v['max_ms']} / {v['p95_ms']}"
                                                     for k, v in res["write_txn_ms"].items())),
        ("load avg before / after", f"{res['load_avg_1m_before']} / {res['load_avg_1m_after']}"),
    ]
