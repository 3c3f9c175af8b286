"""Intake throughput: messages/s through SMTP and through POST /api/intake, each against a store-only floor.

Both paths run on loopback in one process against a throw-away SQLite data dir (unless `database_url` is given),
so the numbers compare like with like: the floor is the same transport (same SMTP server; for the API the same
uvicorn settings, casemgr.bench.intake_http) whose handler only inserts the raw message, and the measured path does
full intake (parse, case, routing, audit, AI hand-off, acknowledgement job). Floor and path run side by side and
are measured in alternating rounds (casemgr.bench.paired); ratio = the median of the per-pair ratios.
"""

from __future__ import annotations

import functools
import os
import smtplib
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, Request

from casemgr.bench.intake_http import body_of
from casemgr.users.service import Principal
from casemgr.web.deps import require


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _run(n: int, concurrency: int, one: Callable[[int], None]) -> dict[str, float]:
    """Run `one(i)` n times over `concurrency` threads; messages/s and latency percentiles."""
    latencies: list[float] = []
    lock = threading.Lock()

    def timed(i: int) -> None:
        t0 = time.perf_counter()
        one(i)
        dt = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(dt)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(timed, range(n)))
    elapsed = time.perf_counter() - start
    return {"per_s": round(n / elapsed, 1), "p50_ms": round(statistics.median(latencies), 2),
            "p99_ms": round(_pct(latencies, 99), 2)}


def _store_only(raw: bytes, channel: str) -> None:
    import hashlib

    from casemgr.db import write_session
    from casemgr.intake.models import Message

    with write_session() as s:
        s.add(Message(channel=channel, message_id=f"<floor.{uuid.uuid4().hex}@bench>", raw=raw,
                      raw_sha256=hashlib.sha256(raw).hexdigest(), status="stored"))


def _mail(i: int, tag: str) -> bytes:
    return (f"From: Customer {i} <customer{i}@example.org>\r\nTo: complaints@example.com\r\n"
            f"Subject: Problem report {tag} {i}\r\nMessage-ID: <{tag}.{i}.{uuid.uuid4().hex}@bench.example>\r\n"
            f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n{body_of(i)}\r\n").encode()


def _bench_smtp(n: int, concurrency: int, pairs: int = 8) -> dict[str, Any]:
    """SMTP intake vs an SMTP store-only floor, both servers up at once, measured in alternating rounds
    (casemgr.bench.paired). The floor runs on the same SMTP server class and settings as `casemgr smtp`
    (make_controller); its handler stores the raw message with one durable insert per message."""
    import queue

    from casemgr.bench import paired
    from casemgr.intake.smtp import IntakeHandler, make_controller

    class FloorHandler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            import asyncio

            raw = envelope.original_content or envelope.content
            await asyncio.get_running_loop().run_in_executor(None, _store_only, raw, "email")
            return "250 OK stored"

    controllers = {paired.FLOOR: make_controller("127.0.0.1", _free_port(), FloorHandler()),
                   paired.PATH: make_controller("127.0.0.1", _free_port(), IntakeHandler(["example.com"]))}
    idle: dict[str, queue.SimpleQueue[smtplib.SMTP]] = {side: queue.SimpleQueue() for side in controllers}
    opened: list[smtplib.SMTP] = []
    tags = {paired.FLOOR: "floor", paired.PATH: "smtp"}

    def send(side: str, i: int) -> float:
        """One message over a kept-open session of that side's server; its latency in ms."""
        try:
            smtp = idle[side].get_nowait()
        except queue.Empty:
            ctl = controllers[side]
            smtp = smtplib.SMTP(ctl.hostname, ctl.port, timeout=60)
            opened.append(smtp)
        try:
            t0 = time.perf_counter()
            smtp.sendmail(f"customer{i}@example.org", ["complaints@example.com"], _mail(i, tags[side]))
            return (time.perf_counter() - t0) * 1000
        finally:
            idle[side].put(smtp)

    pool = ThreadPoolExecutor(concurrency)

    def measure(side: str, first: int, count: int) -> paired.Round:
        start = time.perf_counter()
        latencies = list(pool.map(functools.partial(send, side), range(first, first + count)))
        return paired.Round(side, count, count, time.perf_counter() - start, latencies)

    for ctl in controllers.values():
        ctl.start()
    try:
        for side in controllers:  # warm-up, not measured: load models, compile rules, open every session
            list(pool.map(functools.partial(send, side), range(-concurrency, 0)))
        res = paired.summarise(paired.run_pairs(n, paired.pairs_for(n, pairs, 100), measure))
    finally:
        pool.shutdown()
        for smtp in opened:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        for ctl in controllers.values():
            ctl.stop()
    return {"path": "smtp", "n": n, **res}


async def _floor_route(request: Request,
                       principal: Annotated[Principal, Depends(require("intake.submit"))]) -> dict[str, str]:
    """The API floor: same server, same API key check, but the handler only inserts the raw body."""
    import asyncio

    body = await request.body()
    await asyncio.get_running_loop().run_in_executor(None, _store_only, body, "api")
    return {"status": "stored"}


def _bench_api(n: int, concurrency: int) -> dict[str, Any]:
    import httpx
    import uvicorn

    from casemgr.db import write_session
    from casemgr.users import service as users
    from casemgr.web.app import create_app

    app = create_app()
    app.add_api_route("/bench/store-only", _floor_route, methods=["POST"], include_in_schema=False)

    with write_session() as s:
        _, key = users.create_api_key(s, f"bench-{uuid.uuid4().hex[:8]}", None, ["intake"], actor="system:bench")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("bench API server did not start")
        time.sleep(0.05)
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key},
                                            timeout=60)
            clients.append(c)
        return c

    def body(i: int, tag: str) -> dict[str, Any]:
        return {"subject": f"Problem report {tag} {i}", "body": body_of(i),
                "sender": {"name": f"Customer {i}", "email": f"customer{i}@example.org"},
                "external_id": f"{tag}-{i}-{uuid.uuid4().hex}"}

    def floor_one(i: int) -> None:
        r = client().post("/bench/store-only", json=body(i, "floor"))
        r.raise_for_status()

    def full_one(i: int) -> None:
        r = client().post("/api/intake", json=body(i, "api"))
        if r.status_code != 201:
            raise RuntimeError(f"intake API answered {r.status_code}: {r.text[:200]}")

    try:
        floor_one(-1)  # warm-up, not measured
        full_one(-1)
        floor = _run(n, concurrency, floor_one)
        full = _run(n, concurrency, full_one)
    finally:
        for c in clients:  # close keep-alive connections so the server can shut down at once
            c.close()
        server.should_exit = True
        thread.join(timeout=10)
    return {"path": "api", "n": n, "cases_per_s": full["per_s"], "floor_per_s": floor["per_s"],
            "ratio": round(full["per_s"] / floor["per_s"], 3) if floor["per_s"] else None,
            "p50_ms": full["p50_ms"], "p99_ms": full["p99_ms"], "floor_p99_ms": floor["p99_ms"]}


def run_intake_bench(n: int = 300, concurrency: int = 4, database_url: str | None = None,
                     keep_data: bool = False, clients: int = 32, workers: int = 1,
                     in_process_api: bool = False) -> dict[str, Any]:
    """Measure both paths; returns {"lines": [smtp, api], "summary": {"bench": "intake", ...API path...}}.

    The API path (the contract line) runs on `casemgr serve` in its own process(es) with `clients` concurrent
    keep-alive connections, against a bare FastAPI insert floor under the same uvicorn settings
    (casemgr.bench.intake_http, issue 10), then measures the worker's AI backlog drain rate.
    `in_process_api` keeps the older in-process variant (uvicorn in a thread, store-only floor behind the key check).
    """
    from casemgr import migrate
    from casemgr.runtime import rebuild

    load_before = os.getloadavg()[0]
    saved = {k: os.environ.get(k) for k in ("CASEMGR_DATA_DIR", "CASEMGR_DATABASE_URL", "CASEMGR_INTAKE_ACK")}
    tmp = tempfile.mkdtemp(prefix="casemgr-bench-intake-")
    os.environ["CASEMGR_DATA_DIR"] = tmp
    if database_url:
        os.environ["CASEMGR_DATABASE_URL"] = database_url
    else:
        os.environ.pop("CASEMGR_DATABASE_URL", None)
    rebuild()
    try:
        migrate.upgrade()
        smtp = _bench_smtp(n, concurrency)
        if in_process_api:
            api = _bench_api(n, concurrency)
        else:
            from casemgr.bench.intake_http import measure_api, measure_drain, measure_drain_workers, top_up_backlog

            api = measure_api(n, clients=clients, workers=workers, warmup=min(200, n))
            # The AI drain on its own, after the intake load stopped (the backlog is what SMTP and the API left):
            # one worker slot in this process with its models loaded, then 1 and 2 `casemgr worker` processes.
            drain_n = min(max(n, 100), 2000)
            api.update({k: v for k, v in measure_drain(drain_n, limit=drain_n).items() if k != "worker_stats"})
            per_workers: dict[str, float | None] = {}
            if drain_n >= 500:  # worker processes load their models first: a few batches would time only that
                for procs in (1, 2):
                    top_up_backlog(drain_n)
                    per_workers[str(procs)] = measure_drain_workers(procs, drain_n)["ai_drain_per_s"]
            api["ai_drain_per_s_by_workers"] = per_workers
    finally:
        from casemgr.bench.serving import restore_env

        restore_env(saved)
        if not keep_data:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    # Floor and path of each transport are measured in alternating rounds (casemgr.bench.paired): `ratio` is the
    # median of the per-pair ratios, `ratio_total` total/total, `rounds` every pair's own figures.
    summary = {"bench": "intake", "cases_per_s": api["cases_per_s"], "floor_per_s": api["floor_per_s"],
               "ratio": api["ratio"], "p99_ms": api["p99_ms"],
               "api": {"cases_per_s": api["cases_per_s"], "floor_per_s": api["floor_per_s"], "ratio": api["ratio"],
                       "ratio_total": api["ratio_total"], "p99_ms": api["p99_ms"], "clients": api["clients"],
                       "rounds": api["rounds"]},
               # AI enrichment drain: jobs/s of one worker on the queued backlog, measured on its own after the
               # intake load (casemgr.bench.intake_http.measure_drain); and with 1 and 2 worker processes.
               "ai_drain_per_s": api.get("ai_drain_per_s"),
               "ai_drain_per_s_by_workers": api.get("ai_drain_per_s_by_workers"),
               # SMTP intake (group commit, 250 after a durable commit) against the SMTP store-only floor (same
               # SMTP server, one durable insert per message); also against the API's bare-insert floor.
               "smtp": {"messages_per_s": smtp["cases_per_s"], "ratio": smtp["ratio"], "p99_ms": smtp["p99_ms"],
                        "floor_per_s": smtp["floor_per_s"], "ratio_total": smtp["ratio_total"],
                        "ratio_to_api_floor": round(smtp["cases_per_s"] / api["floor_per_s"], 3)
                        if api["floor_per_s"] else None,
                        "rounds": smtp["rounds"]},
               # The machine is shared: the load average says how busy it was (as `bench soak` and `pipe` do).
               "load_avg_1m_before": round(load_before, 1), "load_avg_1m_after": round(os.getloadavg()[0], 1)}
    return {"lines": [smtp, api], "summary": summary}
