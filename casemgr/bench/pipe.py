"""`casemgr bench pipe`: start-up of `casemgr intake pipe`, as an MTA pays it once per message (issue 23).

Each run is a new process fed one message on stdin, timed from spawn to exit: wall time and the child's CPU
(user + sys, from getrusage). The same-run baseline is a bare `python -c pass` of the same interpreter, so the
ratio says what casemgr adds on this machine at this load. Afterwards the worker drains the spool once and the
bench checks that every acknowledged message became exactly one stored message. Target: under 300 ms.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_MS = 300.0

MESSAGE = ("From: Ann Lee <ann@example.org>\r\nTo: complaints@example.com\r\nSubject: Card charged twice {i}\r\n"
           "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-pipe-{run}-{i}@example.org>\r\n\r\n"
           "I was charged twice for one order. Please refund me.\r\n")


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def _timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall ms, child CPU ms, exit code) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=120, check=False)
    wall = (time.perf_counter() - t0) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000
    if proc.returncode != 0 and argv[-1] == "pipe":
        raise RuntimeError(f"intake pipe exited {proc.returncode}: {proc.stderr.decode()[-1000:]}")
    return wall, cpu, proc.returncode


def _command() -> list[str]:
    """The console script an MTA runs (`casemgr`, next to this interpreter), else the module."""
    script = Path(sys.executable).parent / "casemgr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "casemgr.cli"]


def measure(n: int, env: dict[str, str]) -> dict[str, Any]:
    run_id = f"{os.getpid()}-{int(time.time())}"
    base_wall, base_cpu, pipe_wall, pipe_cpu = [], [], [], []
    cmd = [*_command(), "intake", "pipe"]
    _timed(cmd, MESSAGE.format(i="warm", run=run_id).encode(), env)  # page cache warm, as on a working MTA host
    for i in range(n):
        w, c, _ = _timed([sys.executable, "-c", "pass"], b"", env)
        base_wall.append(w)
        base_cpu.append(c)
        w, c, _ = _timed(cmd, MESSAGE.format(i=i, run=run_id).encode(), env)
        pipe_wall.append(w)
        pipe_cpu.append(c)
    p50_wall, p50_base = _p(pipe_wall, 0.5), _p(base_wall, 0.5)
    return {
        "runs": n, "command": " ".join(cmd[-3:]),
        "pipe_wall_p50_ms": round(p50_wall, 1), "pipe_wall_p95_ms": round(_p(pipe_wall, 0.95), 1),
        "pipe_cpu_p50_ms": round(_p(pipe_cpu, 0.5), 1), "pipe_cpu_p95_ms": round(_p(pipe_cpu, 0.95), 1),
        "python_wall_p50_ms": round(p50_base, 1), "python_cpu_p50_ms": round(_p(base_cpu, 0.5), 1),
        "wall_ratio_to_bare_python": round(p50_wall / p50_base, 2) if p50_base else None,
        "target_ms": TARGET_MS, "cpu_ok": _p(pipe_cpu, 0.5) <= TARGET_MS, "wall_ok": p50_wall <= TARGET_MS,
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def run(n: int = 20, database_url: str | None = None) -> dict[str, Any]:
    """Time n pipe deliveries into a scratch database, then drain the spool and count what was stored."""
    from sqlalchemy import func, select

    from casemgr.bench.serving import bench_database, require_empty
    from casemgr.config import get_settings
    from casemgr.db import read_session
    from casemgr.intake.models import Message, SpooledMessage
    from casemgr.worker import Worker

    with bench_database(database_url, prefix="casemgr-bench-pipe-"):
        require_empty("messages")
        env = dict(os.environ)
        env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
        result = measure(n, env)
        Worker(schedule=False, poll_s=0.0).run(once=True)
        with read_session() as s:
            stored = s.execute(select(func.count()).select_from(Message)
                               .where(Message.direction == "inbound")).scalar_one()  # type: ignore[arg-type]
            left = s.execute(select(func.count()).select_from(SpooledMessage)).scalar_one()
        db = "sqlite" if get_settings().is_sqlite else "postgresql"
        return {"bench": "pipe", **result, "stored_after_worker": int(stored), "acknowledged": n + 1,
                "spool_left": int(left), "stored_once": int(stored) == n + 1 and int(left) == 0, "database": db,
                "cpus": os.cpu_count(), "python": platform.python_version()}
