"""`casemgr bench load`: the locust mixed-traffic scenario, headless on loopback, against `casemgr serve`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from casemgr.bench import serving
from casemgr.bench.serving import bench_database

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py"


def seed(min_cases: int = 0) -> tuple[str, str, list[int]]:
    """Demo data (users per role, 300+ cases), an agent key and an intake key; returns (agent, intake, open ids)."""
    from sqlalchemy import select
    from sqlmodel import col

    from casemgr.cases.models import Case
    from casemgr.config import get_settings
    from casemgr.db import read_session, write_session
    from casemgr.demo import run_demo
    from casemgr.users import service as users

    settings = get_settings()
    saved, settings.ai_inline = settings.ai_inline, False  # seeding speed; AI is not what this measures
    try:
        run_demo()
    finally:
        settings.ai_inline = saved
    with write_session() as s:
        agent = users.get_user_by_name(s, "agent")
        assert agent is not None
        _, agent_key = users.create_api_key(s, "load-agent", agent.id, [], actor="system:bench")
        _, intake_key = users.create_api_key(s, "load-intake", None, ["intake"], actor="system:bench")
    with read_session() as s:
        open_ids = select(col(Case.id)).where(col(Case.closed_at).is_(None)).order_by(col(Case.id)).limit(200)
        ids = list(s.execute(open_ids).scalars())
    return agent_key, intake_key, ids


def _num(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return 0.0


def parse_stats(path: Path) -> dict[str, Any]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    by_name = {}
    total: dict[str, Any] = {}
    for r in rows:
        entry = {"n": int(_num(r["Request Count"])), "failures": int(_num(r["Failure Count"])),
                 "p50_ms": _num(r["50%"]), "p95_ms": _num(r["95%"]), "p99_ms": _num(r["99%"]),
                 "max_ms": _num(r["Max Response Time"]), "rps": round(_num(r["Requests/s"]), 1)}
        if r["Name"] == "Aggregated":
            total = entry
        else:
            by_name[f"{r['Type']} {r['Name']}".replace("GET GET", "GET").replace("PATCH PATCH", "PATCH")
                    .replace("POST POST", "POST")] = entry
    return {"total": total, "by_name": by_name}


def run(seconds: int = 60, users: int = 32, workers: int = 1, database_url: str | None = None,
        spawn_rate: float | None = None) -> dict[str, Any]:
    from casemgr.bench.env import environment

    with bench_database(database_url) as env:
        environ = environment()
        agent_key, intake_key, ids = seed()
        port = serving.free_port()
        out_dir = Path(tempfile.mkdtemp(prefix="casemgr-load-"))
        result_file = out_dir / "extra.json"
        locust_env = {**os.environ, "CASEMGR_LOAD_AGENT_KEY": agent_key, "CASEMGR_LOAD_INTAKE_KEY": intake_key,
                      "CASEMGR_LOAD_CASE_IDS": ",".join(map(str, ids)), "CASEMGR_LOAD_RESULT": str(result_file)}
        with serving.process(serving.serve_args(port, workers), env, port=port):
            cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
                   "-u", str(users), "-r", str(spawn_rate or max(users, 1)), "-t", f"{seconds}s",
                   "--host", f"http://127.0.0.1:{port}", "--csv", str(out_dir / "load"), "--loglevel", "WARNING",
                   "--exit-code-on-error", "0", "--stop-timeout", "10"]
            proc = subprocess.run(cmd, env=locust_env, capture_output=True, text=True, timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"locust exited with {proc.returncode}: {proc.stderr[-2000:]}")
        stats = parse_stats(out_dir / "load_stats.csv")
        extra = json.loads(result_file.read_text()) if result_file.exists() else {}
    total = stats["total"]
    n = total.get("n", 0)
    return {
        "bench": "load", "seconds": seconds, "users": users, "workers": workers, "requests": n,
        "failures": total.get("failures", 0),
        "error_rate": round(total.get("failures", 0) / n, 5) if n else None,
        "rps": total.get("rps"), "p50_ms": total.get("p50_ms"), "p95_ms": total.get("p95_ms"),
        "p99_ms": total.get("p99_ms"), "conflicts_409": extra.get("conflicts_409", 0),
        "by_name": stats["by_name"], "env": environ,
    }


def table_rows(res: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("seconds / users / workers", f"{res['seconds']} / {res['users']} / {res['workers']}"),
        ("requests (req/s)", f"{res['requests']} ({res['rps']})"),
        ("failures (error rate)", f"{res['failures']} ({res['error_rate']})"),
        ("409 expected conflicts", res["conflicts_409"]),
        ("p50 / p95 / p99 ms", f"{res['p50_ms']} / {res['p95_ms']} / {res['p99_ms']}"),
    ]
    for name, e in sorted(res["by_name"].items()):
        rows.append((f"  {name}", f"n={e['n']} fail={e['failures']} p50={e['p50_ms']} p95={e['p95_ms']} "
                                  f"p99={e['p99_ms']}"))
    return rows
