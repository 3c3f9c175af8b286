"""`casemgr bench dashboard`: dashboard and queue page server time at N cases, measured in-process.

Cases and their stage history are bulk-generated (executemany on SQLite, COPY on PostgreSQL), not created
through the service, so a million cases load in about a minute. Then the worker's refresh runs once and the
pages are requested through the ASGI app in-process (auth, query, template, charts: the whole server time).
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from casemgr.cases.enums import CaseStatus
from casemgr.casetypes.registry import get_registry
from casemgr.config import get_settings

CASE_COLS = ("id", "reference", "case_type", "stage", "status", "subject", "description", "priority", "queue",
             "owner_role", "channel", "category", "fields", "tags", "ai_status", "rules_result", "sla_due_at",
             "sla_state", "sla_hours", "stage_entered_at", "waiting_on_customer", "version", "created_at",
             "updated_at", "closed_at")
HIST_COLS = ("case_id", "case_type", "stage", "from_stage", "entered_at", "left_at", "actor")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
CATEGORIES = ("credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking")


def _paths() -> dict[str, list[str]]:
    """The normal path of each case type: its stages in order, without pauses and final stages."""
    out = {}
    for ct in get_registry().case_types.values():
        out[ct.name] = [s.name for s in ct.stages if not s.final and not s.waits_on_customer]
    return out


def generate(n: int, *, seed: int = 8, at: datetime | None = None) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(case row, stage history rows) for n cases over the last year: 70 % closed, the rest open in some stage."""
    from casemgr.sla.clock import due_at

    rng = random.Random(seed)
    reg = get_registry()
    paths = _paths()
    at = at or datetime.now(UTC)
    queues = [q.name for q in reg.org.queues if q.name != "escalations"]
    finals = {name: next(s.name for s in ct.stages if s.final) for name, ct in reg.case_types.items()}
    prefixes = {name: ct.reference_prefix for name, ct in reg.case_types.items()}
    for cid in range(1, n + 1):
        ct = "complaint" if rng.random() < 0.75 else "contract"
        path = paths[ct]
        closed = rng.random() < 0.7
        created = at - timedelta(seconds=rng.uniform(3600, 365 * 86400))
        depth = len(path) if closed else rng.randint(1, len(path))
        t = created
        hist = []
        stages = path[:depth] + ([finals[ct]] if closed else [])
        prev: str | None = None
        for i, st in enumerate(stages):
            last = i == len(stages) - 1
            left = None if last else t + timedelta(hours=rng.lognormvariate(2.3, 1.0))
            if left is not None and left >= at:
                left = None
                last = True
            hist.append((cid, ct, st, prev, t, left, "user:agent"))
            prev = st
            if last:
                break
            t = left  # type: ignore[assignment]
        stage = hist[-1][2]
        is_closed = stage == finals[ct]
        sd = reg.get(ct).stage(stage)
        due = None
        hours = None
        sla_state = "none"
        if not is_closed and sd is not None and sd.sla:
            hours = sd.sla.hours
            due = due_at(t, hours, sd.sla.business_hours)
            sla_state = "breached" if due < at else "on_track"
        rules = '{"default_used": true}' if rng.random() < 0.03 else '{"default_used": false}'
        status = CaseStatus.CLOSED if is_closed else CaseStatus.OPEN
        row = (cid, f"{prefixes[ct]}-{cid}", ct, stage, status.value, f"Bench case {cid}", "",
               rng.choice(PRIORITIES), rng.choice(queues), sd.owner_role if sd else None, "api",
               rng.choice(CATEGORIES) if ct == "complaint" else None, "{}", "[]",
               "unavailable" if rng.random() < 0.01 else "ok", rules, due, sla_state, hours, t, False, len(hist),
               created, t, t if is_closed else None)
        yield row, hist


CASE_DT = tuple(CASE_COLS.index(c) for c in ("sla_due_at", "stage_entered_at", "created_at", "updated_at", "closed_at"))
HIST_DT = (HIST_COLS.index("entered_at"), HIST_COLS.index("left_at"))


def _sqlite_row(row: tuple[Any, ...], dt_cols: tuple[int, ...]) -> tuple[Any, ...]:
    """SQLAlchemy's SQLite text form of UTC datetimes ('YYYY-MM-DD HH:MM:SS.ffffff'); isoformat is C-fast."""
    out = list(row)
    for i in dt_cols:
        v = out[i]
        if v is not None:
            out[i] = v.isoformat(" ", "microseconds")[:26]
    return tuple(out)


def load(n: int, *, batch: int = 50_000) -> float:
    """Bulk-insert n cases; returns seconds taken."""
    from casemgr.db import get_engine

    engine = get_engine(write=True)
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        dialect = engine.dialect.name
        cur = raw.cursor()
        cases: list[tuple[Any, ...]] = []
        hist: list[tuple[Any, ...]] = []

        def flush() -> None:
            if dialect == "sqlite":
                cur.execute("BEGIN")
                cur.executemany(f"INSERT INTO cases ({', '.join(CASE_COLS)}) VALUES ({', '.join('?' * len(CASE_COLS))})",
                                [_sqlite_row(r, CASE_DT) for r in cases])
                cur.executemany(f"INSERT INTO stage_history ({', '.join(HIST_COLS)}) VALUES "
                                f"({', '.join('?' * len(HIST_COLS))})", [_sqlite_row(r, HIST_DT) for r in hist])
                cur.execute("COMMIT")
            else:
                with cur.copy(f"COPY cases ({', '.join(CASE_COLS)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
                    for r in cases:
                        cp.write_row(r)
                with cur.copy(f"COPY stage_history ({', '.join(HIST_COLS)}) FROM STDIN") as cp:  # type: ignore[attr-defined]
                    for r in hist:
                        cp.write_row(r)
                raw.commit()
            cases.clear()
            hist.clear()

        if dialect == "sqlite":
            cur.execute("PRAGMA synchronous=OFF")
        for row, h in generate(n):
            cases.append(row)
            hist.extend(h)
            if len(cases) >= batch:
                flush()
        if cases:
            flush()
        if dialect == "sqlite":
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("ANALYZE")
        else:
            cur.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
            raw.commit()
            driver: Any = raw.driver_connection  # type: ignore[attr-defined]
            driver.autocommit = True  # VACUUM refuses to run inside a transaction
            with driver.cursor() as vc:
                vc.execute("VACUUM ANALYZE cases")
                vc.execute("VACUUM ANALYZE stage_history")
            driver.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - t0


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def measure(*, queue_requests: int = 200, dashboard_requests: int = 5) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from casemgr.cases.schemas import CaseFilters
    from casemgr.cases.service import list_cases
    from casemgr.db import read_session, write_session
    from casemgr.metrics import service
    from casemgr.users import service as users
    from casemgr.web.app import create_app

    with write_session() as s:
        u = users.create_user(s, f"bench-lead-{os.getpid()}", "correct-horse-battery", ["lead", "agent"])
        _, secret = users.create_api_key(s, f"bench-{os.getpid()}", u.id)
    t0 = time.perf_counter()
    service.refresh_in_steps(full=True)
    refresh_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    service.refresh_in_steps()  # what the worker does every few minutes: the last two days' visits + live figures
    refresh_incr_s = time.perf_counter() - t0
    from casemgr.conformance import service as conformance

    t0 = time.perf_counter()
    conformance.refresh()  # the worker's hourly conformance snapshot, which the dashboard page reads (issue 22)
    conformance_s = time.perf_counter() - t0
    reg = get_registry()
    queues = [q.name for q in reg.org.queues]
    stages = sorted({(ct.name, s.name) for ct in reg.case_types.values() for s in ct.stages if not s.final})
    rng = random.Random(3)
    inner = create_app()
    server: list[tuple[float, float]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # Server time = from the ASGI call to the last byte, without the test client's own work. CPU time of the
        # process over the same span is reported too: on a loaded shared machine wall time mostly measures the queue.
        w, c = time.perf_counter(), time.process_time()
        await inner(scope, receive, send)
        server.append(((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000))

    headers = {"X-API-Key": secret}
    queue_ms: list[float] = []
    queue_cpu: list[float] = []
    list_ms: list[float] = []
    with TestClient(app) as client:
        client.get("/queue", headers=headers)  # warm-up: templates compiled, pool filled
        cursors: list[str] = []
        for i in range(queue_requests):
            kind = i % 4
            if kind == 0:
                url, f = "/queue", CaseFilters(status=CaseStatus.OPEN)
            elif kind == 1:
                q = rng.choice(queues)
                url, f = f"/queue?queue={q}", CaseFilters(status=CaseStatus.OPEN, queue=q)
            elif kind == 2:
                ct, st = rng.choice(stages)
                url, f = f"/queue?type={ct}&stage={st}", CaseFilters(status=CaseStatus.OPEN, case_type=ct, stage=st)
            else:
                url, f = "/queue?sla_state=breached", CaseFilters(status=CaseStatus.OPEN, sla_state="breached")
            r = client.get(url, headers=headers)
            queue_ms.append(server[-1][0])
            queue_cpu.append(server[-1][1])
            if r.status_code != 200:
                raise RuntimeError(f"GET {url} -> {r.status_code}: {r.text[:300]}")
            with read_session() as s:
                t = time.perf_counter()
                _, nxt = list_cases(s, f, limit=50, cursor=cursors[-1] if cursors and kind == 0 else None)
                list_ms.append((time.perf_counter() - t) * 1000)
            if kind == 0 and nxt:
                cursors.append(nxt)
        dash_ms: list[float] = []
        dash_cpu: list[float] = []
        for i in range(dashboard_requests):
            days = (30, 90, 7, 365)[i % 4]
            r = client.get(f"/dashboard?days={days}", headers=headers)
            dash_ms.append(server[-1][0])
            dash_cpu.append(server[-1][1])
            if r.status_code != 200:
                raise RuntimeError(f"GET /dashboard -> {r.status_code}: {r.text[:300]}")
        client.get("/metrics", headers=headers)
        metrics_ms = server[-1][0]
    # One SLA scan pass as the worker runs it (warnings for cases nearing their target are real writes).
    from casemgr.sla import engine

    t0 = time.perf_counter()
    with write_session() as s:
        scan = engine.scan(s)
    sla_scan_ms = (time.perf_counter() - t0) * 1000
    return {"sla_scan_ms": round(sla_scan_ms, 1), "sla_scan_events": scan["at_risk"] + scan["breached"],
            "queue_p50_ms": round(_p(queue_ms, 0.5), 2), "queue_p95_ms": round(_p(queue_ms, 0.95), 2),
            "queue_p95_cpu_ms": round(_p(queue_cpu, 0.95), 2), "list_cases_p95_ms": round(_p(list_ms, 0.95), 2),
            "dashboard_ms": round(statistics.median(dash_ms), 1), "dashboard_max_ms": round(max(dash_ms), 1),
            "dashboard_cpu_ms": round(statistics.median(dash_cpu), 1), "metrics_ms": round(metrics_ms, 1),
            "refresh_full_s": round(refresh_s, 2), "refresh_s": round(refresh_incr_s, 2),
            "conformance_refresh_s": round(conformance_s, 2),
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def run_dashboard_bench(cases: int, database_url: str | None = None) -> dict[str, Any]:
    """Load `cases` cases into a scratch database (temp SQLite, or the empty PostgreSQL database given) and measure."""
    from casemgr.bench.serving import bench_database, require_empty

    with bench_database(database_url):
        require_empty("cases")
        load_s = load(cases)
        result = measure()
        db = "sqlite" if get_settings().is_sqlite else "postgresql"
        return {"bench": "dashboard", "cases": cases, **result, "load_s": round(load_s, 1), "database": db,
                "cpus": os.cpu_count(), "python": platform.python_version()}
