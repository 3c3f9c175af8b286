"""`casemgr bench memory`: RSS of one app worker over many mixed requests, and whether it keeps growing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from casemgr.bench import loadgen, serving
from casemgr.bench.intake_http import BODIES
from casemgr.bench.serving import bench_database

LIMIT_MB = 300.0


def _rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    rss = proc.memory_info().rss
    for child in proc.children(recursive=True):  # uvicorn --workers N: the app runs in children
        rss = max(rss, child.memory_info().rss)
    return rss / 1e6


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def _offset(make: Callable[[int], bytes], base: int, i: int) -> bytes:
    return make(base + i)


def run(requests: int = 1_000_000, clients: int = 16, samples: int = 20, database_url: str | None = None,
        intake_share: float = 0.1) -> dict[str, Any]:
    """Mixed reads (queue page, case page, case JSON, case list) with `intake_share` intake; RSS per chunk."""
    from casemgr.bench.env import environment
    from casemgr.bench.load import seed

    with bench_database(database_url) as env:
        environ = environment()
        agent_key, intake_key, ids = seed()
        port = serving.free_port()
        host = f"127.0.0.1:{port}"
        agent = {"X-API-Key": agent_key}
        intake = {"X-API-Key": intake_key, "Content-Type": "application/json"}
        every = max(1, round(1 / intake_share)) if intake_share > 0 else 0

        def make(i: int) -> bytes:
            if every and i % every == 0:
                body = json.dumps({"subject": f"Memory {i}", "body": BODIES[i % len(BODIES)],
                                   "external_id": uuid.uuid4().hex}).encode()
                return loadgen.build_request("POST", "/api/intake", host=host, headers=intake, body=body)
            case_id = ids[i % len(ids)]
            path = ("/queue", f"/cases/{case_id}", f"/api/cases/{case_id}", "/api/cases?limit=20")[i % 4]
            return loadgen.build_request("GET", path, host=host, headers=agent)

        chunk = max(200, requests // samples)
        points: list[tuple[int, float]] = []
        errors = 0
        done = 0
        with serving.process(serving.serve_args(port, 1), env, port=port) as proc:
            points.append((0, _rss_mb(proc.pid)))
            while done < requests:
                n = min(chunk, requests - done)
                res = loadgen.run("127.0.0.1", port, partial(_offset, make, done), n=n, concurrency=clients)
                errors += n - res.ok
                done += n
                points.append((done, _rss_mb(proc.pid)))
    rss = [p[1] for p in points]
    half = points[len(points) // 2:]
    slope = _slope([p[0] / 100_000 for p in half], [p[1] for p in half])
    growth_second_half = round(half[-1][1] - half[0][1], 1)
    return {
        "bench": "memory", "requests": done, "errors": errors, "rss_start_mb": round(rss[0], 1),
        "rss_after_warmup_mb": round(rss[1], 1) if len(rss) > 1 else None, "rss_end_mb": round(rss[-1], 1),
        "rss_max_mb": round(max(rss), 1), "growth_second_half_mb": growth_second_half,
        "trend_mb_per_100k": round(slope, 2), "limit_mb": LIMIT_MB,
        "ok": max(rss) <= LIMIT_MB and growth_second_half <= max(5.0, 0.05 * rss[-1]),
        "samples": [[n, round(m, 1)] for n, m in points], "env": environ,
    }


def table_rows(res: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("requests (errors)", f"{res['requests']} ({res['errors']})"),
        ("RSS start / after first chunk / end MB", f"{res['rss_start_mb']} / {res['rss_after_warmup_mb']} / "
                                                   f"{res['rss_end_mb']}"),
        ("RSS max MB (limit)", f"{res['rss_max_mb']} ({res['limit_mb']})"),
        ("growth over second half MB", res["growth_second_half_mb"]),
        ("trend MB per 100k requests (2nd half)", res["trend_mb_per_100k"]),
        ("ok", res["ok"]),
    ]
