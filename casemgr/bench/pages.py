"""`casemgr bench pages`: queue and case page server time at N cases with the workspace features (issue 20).

Cases are bulk-generated as for `bench dashboard`; a lead's API key then requests, in-process through the ASGI
app (auth, counts of every default view, keyset page, template, SLA countdowns): the default views, per-queue
views, each sort, next pages, a customer-email search; and case pages (conversation, audit timeline in words,
customer panel, macros) of random cases, some with notes and a customer party. Target: p95 <= 150 ms each.
"""

from __future__ import annotations

import os
import platform
import random
import re
import time
from typing import Any

from casemgr.config import get_settings

TARGET_MS = 150.0


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def _prepare_cases(n: int, rng: random.Random) -> list[int]:
    """Give a sample of cases a customer, notes and an assignee, as worked cases have (through the services)."""
    from casemgr.cases import service
    from casemgr.cases.models import Case, Party
    from casemgr.db import write_session

    ids = rng.sample(range(1, n + 1), min(60, n))
    with write_session() as s:
        for i, cid in enumerate(ids):
            case = s.get(Case, cid)
            if case is None:
                continue
            party = Party(name=f"Customer {i % 7}", email=f"customer{i % 7}@example.com")
            s.add(party)
            s.flush()
            case.party_id = party.id
            s.add(case)
            s.flush()
            for k in range(3):
                c = service.get_case(s, cid)
                service.add_note(s, cid, f"checked step {k} @bench-lead", "user:bench", c.version)
    return ids


def measure(n: int, *, queue_requests: int = 160, case_requests: int = 120) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from casemgr.casetypes.registry import get_registry
    from casemgr.db import write_session
    from casemgr.users import service as users
    from casemgr.web.app import create_app

    rng = random.Random(5)
    with write_session() as s:
        # A reused data dir (--data-dir) has the lead of an earlier run.
        u = users.get_user_by_name(s, "bench-lead") or users.create_user(s, "bench-lead", "correct-horse-battery",
                                                                          ["lead", "agent"])
        _, secret = users.create_api_key(s, f"bench-pages-{os.getpid()}-{time.time_ns()}", u.id)
    worked = _prepare_cases(n, rng)
    inner = create_app()
    server: list[tuple[float, float]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        w, c = time.perf_counter(), time.process_time()
        await inner(scope, receive, send)
        server.append(((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000))

    queues = [q.name for q in get_registry().org.queues]
    views = ["new", "mine", "waiting", "due_today", "breached", "all"]
    sorts = ["sla", "priority", "updated", "created"]
    headers = {"X-API-Key": secret, "Accept": "text/html"}
    q_ms: list[float] = []
    q_cpu: list[float] = []
    c_ms: list[float] = []
    c_cpu: list[float] = []
    with TestClient(app) as client:
        client.get("/queue", headers=headers)
        client.get(f"/cases/{worked[0]}", headers=headers)  # warm-up: templates compiled, pool filled
        next_url = None
        for i in range(queue_requests):
            kind = i % 5
            if kind == 0:
                url = f"/queue?view={rng.choice(views)}&sort={rng.choice(sorts)}"
            elif kind == 1:
                url = f"/queue?view=queue:{rng.choice(queues)}&sort={rng.choice(sorts)}"
            elif kind == 2 and next_url:
                url = next_url
            elif kind == 3:
                url = f"/queue?view=all&q=customer{rng.randrange(7)}%40example.com"
            else:
                url = f"/queue?view=all&priority=urgent&sort={rng.choice(sorts)}"
            r = client.get(url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url} -> {r.status_code}: {r.text[:300]}")
            q_ms.append(server[-1][0])
            q_cpu.append(server[-1][1])
            m = re.search(r'href="([^"]+)" rel="next"', r.text)
            next_url = m.group(1).replace("&amp;", "&") if m else None
        for i in range(case_requests):
            cid = rng.choice(worked) if i % 2 else rng.randint(1, n)
            url = f"/cases/{cid}" + ("?tab=audit" if i % 3 == 0 else "")
            r = client.get(url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url} -> {r.status_code}: {r.text[:300]}")
            c_ms.append(server[-1][0])
            c_cpu.append(server[-1][1])
    return {"queue_p50_ms": round(_p(q_ms, 0.5), 1), "queue_p95_ms": round(_p(q_ms, 0.95), 1),
            "queue_p50_cpu_ms": round(_p(q_cpu, 0.5), 1), "queue_p95_cpu_ms": round(_p(q_cpu, 0.95), 1),
            "case_p50_ms": round(_p(c_ms, 0.5), 1), "case_p95_ms": round(_p(c_ms, 0.95), 1),
            "case_p50_cpu_ms": round(_p(c_cpu, 0.5), 1), "case_p95_cpu_ms": round(_p(c_cpu, 0.95), 1),
            "target_p95_ms": TARGET_MS,
            "queue_ok": _p(q_ms, 0.95) <= TARGET_MS, "case_ok": _p(c_ms, 0.95) <= TARGET_MS,
            "load_avg_1m": round(os.getloadavg()[0], 1)}


def run_pages_bench(cases: int, database_url: str | None = None, data_dir: str | None = None) -> dict[str, Any]:
    """Load `cases` generated cases into a scratch database and measure the two pages. `data_dir`: a SQLite data
    dir that already holds `cases` generated cases (a 1M-case soak copy; changed by the run: work on a copy)."""
    from sqlalchemy import text

    from casemgr import walcheckpoint
    from casemgr.bench.dashboard import load
    from casemgr.bench.serving import bench_database, require_empty
    from casemgr.db import get_engine, read_session

    with bench_database(database_url, prefix="casemgr-bench-pages-", data_dir=data_dir):
        if data_dir:
            with read_session() as s:
                have = int(s.execute(text("SELECT count(*) FROM cases")).scalar_one())
            if have < cases:
                raise RuntimeError(f"{data_dir} holds {have} cases, fewer than --cases {cases}")
            load_s = 0.0
        else:
            require_empty("cases")
            load_s = load(cases)
        if get_settings().is_sqlite:
            # The bulk load leaves a WAL as large as the data: checkpoint it as a running server would have, or
            # every read walks the WAL index first (that measured the load, not the pages).
            walcheckpoint.truncate(str(get_engine(write=True).url.database))
        result = measure(cases)
        db = "sqlite" if get_settings().is_sqlite else "postgresql"
        return {"bench": "pages", "cases": cases, **result, "load_s": round(load_s, 1), "database": db,
                "cpus": os.cpu_count(), "python": platform.python_version()}
