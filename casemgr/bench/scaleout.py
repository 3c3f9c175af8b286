"""`casemgr bench scaleout`: N `casemgr serve` processes behind a round-robin loopback balancer, plus M workers,
on one PostgreSQL (issue 23).

For every combination of apps and workers, in one throw-away schema state of the given database:
 1. intake: `n` POST /api/intake requests over `clients` keep-alive connections to the balancer, which hands
    each new connection to the next app (round robin), so the connections spread evenly over the apps;
    AI work is queued for the workers (CASEMGR_AI_INLINE=false, as served);
 2. drain: M `casemgr worker` processes on the AI jobs that intake queued, timed from the first finished job
    (each worker loads its models first) until all are done;
 3. check: every request answered 2xx is stored exactly once (one case per accepted request, by its tag).
While intake runs, pg_stat_activity is sampled every 50 ms: what the apps' sessions wait on (a lock on the
audit-chain head row shows as Lock/transactionid or Lock/tuple, an exhausted pool as fewer active sessions)
and how many connections the apps hold. Ratios are against the 1-app, 1-worker line of the same run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from casemgr.bench import loadgen, serving
from casemgr.bench.intake_http import body_of


class Balancer:
    """A TCP round-robin balancer on 127.0.0.1 (a thread with its own event loop): connection i goes to
    backend i mod N and stays there (HTTP keep-alive), as a layer-4 balancer does."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = serving.free_port()
        self._next = itertools.cycle(backends)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)
        self.connections: Counter[int] = Counter()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = next(self._next)
        self.connections[backend] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._server = server
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def __enter__(self) -> Balancer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def _sampling_waits(database_url: str, period_s: float = 0.05) -> Iterator[dict[str, Any]]:
    """Sample pg_stat_activity of this database while the block runs: wait events of active sessions, and the
    number of connections, over all samples."""
    from sqlalchemy import create_engine, text

    out: dict[str, Any] = {"waits": Counter(), "samples": 0, "max_connections_held": 0, "max_active": 0}
    stop = threading.Event()
    engine = create_engine(database_url, pool_size=1, max_overflow=0)

    def sample() -> None:
        q = text("SELECT state, coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') AS w "
                 "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                 "AND backend_type = 'client backend'")
        with engine.connect() as conn:
            while not stop.is_set():
                rows = conn.execute(q).all()
                out["samples"] += 1
                out["max_connections_held"] = max(out["max_connections_held"], len(rows))
                # "idle in transaction": a session holding its transaction (and its row locks, such as the
                # audit-chain head) while the app runs Python between statements.
                busy = [f"{r.state}/{r.w}" for r in rows if r.state and r.state != "idle"]
                out["max_active"] = max(out["max_active"], len(busy))
                out["waits"].update(busy)
                stop.wait(period_s)

    th = threading.Thread(target=sample, name="pg-sampler", daemon=True)
    th.start()
    try:
        yield out
    finally:
        stop.set()
        th.join(5)
        engine.dispose()
        n = max(1, out["samples"])
        # Mean number of sessions in each state/wait over the samples.
        out["waits"] = {k: round(v / n, 2) for k, v in out["waits"].most_common(8)}


def _ai_jobs_left() -> int:
    from casemgr.bench.intake_http import _ai_jobs

    return _ai_jobs(("queued", "failed", "running"))


def _stored(tag: str) -> tuple[int, int]:
    """(cases opened by this run's requests, distinct subjects among them)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from casemgr.cases.models import Case
    from casemgr.db import read_session

    with read_session() as s:
        where = col(Case.subject).like(f"Scaleout {tag} %")
        total = s.execute(select(func.count()).select_from(Case).where(where)).scalar_one()
        distinct = s.execute(select(func.count(func.distinct(Case.subject))).where(where)).scalar_one()
    return int(total), int(distinct)


def _drain(workers: int, env: dict[str, str], timeout_s: float) -> dict[str, Any]:
    backlog = _ai_jobs_left()
    if backlog == 0:
        return {"ai_jobs": 0, "ai_drain_per_s": None}
    t_first = first_left = None
    left = backlog
    with ExitStack() as stack:
        for _ in range(workers):
            stack.enter_context(serving.process(serving.worker_args(), env))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = _ai_jobs_left()
            if t_first is None and left < backlog:
                t_first, first_left = time.perf_counter(), left
            if left == 0:
                break
            time.sleep(0.05)
        t_end = time.perf_counter()
    rate = None
    if t_first is not None and first_left is not None and t_end > t_first and first_left > left:
        rate = round((first_left - left) / (t_end - t_first), 1)
    return {"ai_jobs": backlog, "ai_left": left, "ai_drain_per_s": rate}


def run(apps: list[int], workers: list[int], *, n: int = 2000, clients: int = 32, database_url: str,
        drain_timeout_s: float = 600.0) -> dict[str, Any]:
    from casemgr import migrate
    from casemgr.bench.env import environment
    from casemgr.bench.intake_http import make_api_key
    from casemgr.bench.serving import restore_env
    from casemgr.config import get_settings
    from casemgr.runtime import rebuild

    keys = ("CASEMGR_DATABASE_URL", "CASEMGR_AI_INLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["CASEMGR_DATABASE_URL"] = database_url
    os.environ["CASEMGR_AI_INLINE"] = "false"
    rebuild()
    lines: list[dict[str, Any]] = []
    try:
        if get_settings().is_sqlite:
            raise ValueError("bench scaleout needs PostgreSQL (--database-url postgresql://...)")
        migrate.upgrade()
        env = {"CASEMGR_DATABASE_URL": database_url, "CASEMGR_AI_INLINE": "false"}
        key = make_api_key(["intake"])
        for a, w in itertools.product(apps, workers):
            tag = uuid.uuid4().hex[:10]
            headers = {"Content-Type": "application/json", "X-API-Key": key}

            def request(i: int, tag: str = tag, headers: dict[str, str] = headers) -> bytes:
                body = json.dumps({"subject": f"Scaleout {tag} {i}", "body": body_of(i),
                                   "sender": {"name": f"Customer {i}", "email": f"scale{i}@example.org"},
                                   "external_id": f"scaleout-{tag}-{i}"}).encode()
                return loadgen.build_request("POST", "/api/intake", host="127.0.0.1", headers=headers, body=body)

            ports = [serving.free_port() for _ in range(a)]
            with ExitStack() as stack:
                for port in ports:
                    stack.enter_context(serving.process(serving.serve_args(port, 1), env, port=port))
                balancer = stack.enter_context(Balancer(ports))
                warm = loadgen.run("127.0.0.1", balancer.port, lambda i: request(-1 - i), n=min(200, n),
                                   concurrency=clients)
                with _sampling_waits(database_url) as pg:
                    res = loadgen.run("127.0.0.1", balancer.port, request, n=n, concurrency=clients)
                summary = res.summary()
            drained = _drain(w, env, drain_timeout_s)
            stored, distinct = _stored(tag)
            accepted = summary["ok"] + warm.summary()["ok"]
            lines.append({
                "apps": a, "workers": w, "n": n, "clients": clients,
                "intake_per_s": summary["per_s"], "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
                "errors": summary["errors"], "statuses": summary["statuses"],
                **drained,
                "accepted": accepted, "stored": stored, "stored_once": stored == distinct == accepted,
                "pg_waits": pg["waits"], "pg_max_connections_held": pg["max_connections_held"],
                "pg_max_active": pg["max_active"],
            })
        base = next((x for x in lines if x["apps"] == min(apps) and x["workers"] == min(workers)), None)
        for x in lines:
            if base and base["intake_per_s"]:
                x["intake_vs_base"] = round(x["intake_per_s"] / base["intake_per_s"], 2)
            if base and base.get("ai_drain_per_s") and x.get("ai_drain_per_s"):
                x["drain_vs_base"] = round(x["ai_drain_per_s"] / base["ai_drain_per_s"], 2)
        return {"bench": "scaleout", "lines": lines, "all_stored_once": all(x["stored_once"] for x in lines),
                "env": environment()}
    finally:
        restore_env(saved)
