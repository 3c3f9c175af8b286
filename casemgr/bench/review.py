"""`casemgr bench review`: the review queue's server time at N open AI decisions (issue 21: <= 300 ms at 10,000).

Cases come from the dashboard bench's bulk loader; decisions are bulk-inserted (one executemany): 70 % sampled
applied decisions, 30 % pending suggestions owned by several roles, plus as many closed (reviewed or not sampled)
ones. Then the JSON queue (first page, each filter, a deep keyset page) and the /review page are requested
through the ASGI app in-process as a reviewer; /healthz in the same run is the baseline for the ratios.
"""

from __future__ import annotations

import os
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from casemgr.config import get_settings

KINDS = (("classify", "category", "agent"), ("set_priority", "priority", "lead"), ("draft_reply", None, "agent"),
         ("approve_refund", None, "finance"))
TARGET_MS = 300.0


def _decisions(n_open: int, n_cases: int, seed: int = 21) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    at = datetime.now(UTC)
    rows = []
    for i in range(n_open * 2):
        kind, field, owner = rng.choice(KINDS)
        is_open = i < n_open
        suggested = is_open and rng.random() < 0.3
        status = ("pending" if suggested else "sampled") if is_open else rng.choice(("none", "accepted", "overridden"))
        rows.append({
            "case_id": rng.randint(1, n_cases), "kind": kind, "field": field, "proposed": {"value": i},
            "rationale": "bench", "confidence": round(rng.uniform(0.3, 1.0), 3),
            "outcome": "suggested" if suggested else "applied", "owner_role": owner,
            "policy_version": rng.choice(("p-1", "p-2")), "model_version": rng.choice(("m-1", "m-2")),
            "review_status": status, "sampled": status == "sampled", "sample_rate": 0.1,
            "context": {"category": rng.choice(("credit_card", "debt_collection", "retail_banking"))},
            "created_at": at - timedelta(seconds=rng.uniform(0, 30 * 86400)),
        })
    return rows


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def measure(n_open: int, requests: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import insert

    from casemgr.db import write_session
    from casemgr.governance.models import AIDecision
    from casemgr.users import service as users
    from casemgr.web.app import create_app

    t0 = time.perf_counter()
    with write_session() as s:
        s.execute(insert(AIDecision.__table__), _decisions(n_open, n_open))  # type: ignore[attr-defined]
        u = users.create_user(s, f"bench-reviewer-{os.getpid()}", "correct-horse-battery", ["reviewer", "lead"])
        _, secret = users.create_api_key(s, f"bench-review-{os.getpid()}", u.id)
    load_s = time.perf_counter() - t0
    inner = create_app()
    server: list[float] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        w = time.perf_counter()
        await inner(scope, receive, send)
        server.append((time.perf_counter() - w) * 1000)

    headers = {"X-API-Key": secret}
    urls = ["/api/review/queue", "/api/review/queue?kind=classify", "/api/review/queue?model_version=m-2",
            "/api/review/queue?policy_version=p-1&min_confidence=0.3&max_confidence=0.6",
            f"/api/review/queue?after_id={int(n_open * 0.9)}", "/review", "/review?kind=set_priority"]
    times: dict[str, list[float]] = {u: [] for u in urls}
    health: list[float] = []
    with TestClient(app) as client:
        for url in urls:  # warm-up
            client.get(url, headers=headers)
        for i in range(requests):
            url = urls[i % len(urls)]
            r = client.get(url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"GET {url} -> {r.status_code}: {r.text[:300]}")
            times[url].append(server[-1])
            client.get("/healthz")
            health.append(server[-1])
    all_ms = [t for v in times.values() for t in v]
    base = _p(health, 0.5)
    return {
        "open_decisions": n_open, "requests": requests, "load_s": round(load_s, 2),
        "p50_ms": round(_p(all_ms, 0.5), 1), "p95_ms": round(_p(all_ms, 0.95), 1), "max_ms": round(max(all_ms), 1),
        "per_url_p95_ms": {u: round(_p(v, 0.95), 1) for u, v in times.items() if v},
        "healthz_p50_ms": round(base, 2), "ratio_p95_to_healthz": round(_p(all_ms, 0.95) / base, 1) if base else None,
        "target_ms": TARGET_MS, "ok": _p(all_ms, 0.95) <= TARGET_MS,
    }


def run_review_bench(n_open: int = 10_000, requests: int = 140) -> dict[str, Any]:
    """A scratch SQLite database with n_open cases and n_open open (plus n_open closed) decisions, measured."""
    from casemgr.bench.dashboard import load
    from casemgr.bench.serving import bench_database

    with bench_database(None, prefix="casemgr-bench-review-"):
        load(n_open)
        result = measure(n_open, requests)
        return {"bench": "review", **result, "database": "sqlite" if get_settings().is_sqlite else "postgresql",
                "cpus": os.cpu_count(), "python": platform.python_version()}
