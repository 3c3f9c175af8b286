"""SIGKILL in the middle of work.

Worker: killed repeatedly while it runs AI enrichment (slow loopback chat-completions server), SLA breach scans and
outbound mail (loopback SMTP sink). After a restart every job completes exactly once: one AI result, one breach,
one escalation task per case, every outbound message delivered, always with the same Message-ID.

App: `casemgr serve` killed during a burst of API intake. Every request that got a 2xx is in the database with its
message and audit events; nothing is half-written; `casemgr audit verify` passes; the retried requests (same
external_id) are stored once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from casemgr.ai.models import AICall  # noqa: F401 - table import for the registry
from casemgr.audit.models import AuditEvent
from casemgr.bench.serving import free_port
from casemgr.cases.models import Case, Task
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.intake.models import Message
from casemgr.intake.service import ingest_raw
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue
from casemgr.runtime import rebuild

from .fake_llm import FakeLLM
from .helpers import ROOT, assert_consistent, cli, raw_mail
from .test_ai_faults import use_external_ai

N_CASES = 6


def _worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "casemgr.cli", "worker", "--no-schedule", "--poll-seconds", "0.05",
           "--lease-seconds", "1", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc: subprocess.Popen[bytes], ready: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            return True
        time.sleep(0.01)
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    return False


def _pending() -> int:
    with read_session() as s:
        return len(s.execute(select(Job.id).where(Job.status.in_(("queued", "running", "failed")))).all())


@pytest.mark.slow  # ~1 min: six worker processes started and killed; `make test-faults`
@pytest.mark.timing  # each kill must land inside a window (an AI call or a delivery in flight)
def test_worker_sigkilled_mid_ai_sla_and_mail_jobs_completes_each_once(
    monkeypatch: pytest.MonkeyPatch, smtp_sink: Any
) -> None:
    with FakeLLM("slow", delay_s=0.25) as llm:
        use_external_ai(monkeypatch, llm.port)
        monkeypatch.setenv("CASEMGR_AI_TIMEOUT_S", "10")
        monkeypatch.setenv("CASEMGR_INTAKE_ACK", "true")
        rebuild()
        sent = 0
        for i in range(N_CASES):
            res = ingest_raw(raw_mail(f"<kill-{i}@example.org>", subject=f"kill test {i}", sender=f"c{i}@example.org"))
            assert res.status == "case"
            sent += 1
        # Every case is already over its SLA target: the scan must breach and escalate each exactly once.
        with write_session() as s:
            s.execute(update(Case).values(sla_due_at=now() - timedelta(hours=2), sla_state="on_track"))
            enqueue(s, "sla.scan", {}, idempotency_key="kill-test-scan")
            outbound = list(s.execute(select(Message.message_id).where(Message.direction == "outbound")).scalars())
        assert len(outbound) == N_CASES  # one acknowledgement per case, queued with the case
        env = os.environ.copy()

        kills = {"ai": 0, "mail": 0, "any": 0}
        # 1) Killed while AI calls are in flight (the provider has seen a request from this worker).
        for _ in range(3):
            seen = len(llm.requests)
            if _kill_when(_worker(env), lambda seen=seen: len(llm.requests) > seen + 1):
                kills["ai"] += 1
            time.sleep(1.1)  # the dead worker's lease runs out
        # 2) Killed while the relay holds a delivery open (sent, but the 250 never reached the worker).
        smtp_sink.hold_s = 3.0
        smtp_sink.in_data.clear()
        if _kill_when(_worker(env), smtp_sink.in_data.is_set):
            kills["mail"] += 1
        time.sleep(1.1)
        # 3) Killed at an arbitrary moment.
        proc = _worker(env)
        time.sleep(2.0)
        if proc.poll() is None:
            kills["any"] += 1
        _kill_when(proc, lambda: True)
        time.sleep(1.1)
        # Restart and let it drain the queue.
        for _ in range(10):
            if _pending() == 0:
                break
            out = subprocess.run([sys.executable, "-m", "casemgr.cli", "worker", "--no-schedule", "--once",
                                  "--lease-seconds", "30"], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=300)
            assert out.returncode == 0, out.stderr[-2000:]
            time.sleep(1.1)
    assert kills["ai"] >= 2 and kills["mail"] == 1, kills

    with read_session() as s:
        jobs = Counter((j.kind, j.status) for j in s.execute(select(Job)).scalars())
        cases = list(s.execute(select(Case)).scalars())
        events = list(s.execute(select(AuditEvent.case_id, AuditEvent.action, AuditEvent.after)).all())
        tasks = Counter(t.case_id for t in s.execute(select(Task).where(Task.source == "sla")).scalars())
        out_msgs = list(s.execute(select(Message).where(Message.direction == "outbound")).scalars())
        from casemgr.governance.models import AIDecision

        runs: dict[int, set[str]] = {}
        for d in s.execute(select(AIDecision)).scalars():
            runs.setdefault(d.case_id, set()).add(d.run_id)
    assert {status for (_, status) in jobs} == {"done"}, jobs
    ids = {c.id for c in cases}
    ai_ok = Counter(cid for cid, action, after in events if action == "ai.status" and after["ai_status"] == "ok")
    breached = Counter(cid for cid, action, _ in events if action == "sla.breached")
    assert ai_ok == Counter(dict.fromkeys(ids, 1)), ai_ok          # one AI result per case
    assert all(len(r) == 1 for r in runs.values()) and set(runs) == ids, runs  # killed runs left no decisions
    assert breached == Counter(dict.fromkeys(ids, 1)), breached    # one breach per case
    assert tasks == Counter(dict.fromkeys(ids, 1)), tasks          # one escalation task per case
    assert {m.status for m in out_msgs} == {"sent"}
    delivered = Counter(m["message_id"] for m in smtp_sink.messages)
    # Every acknowledgement arrived, always with its stored Message-ID; only the delivery cut by the kill between
    # the relay's acceptance and our commit was repeated (same Message-ID, so the recipient's client dedupes it).
    assert set(delivered) == set(outbound)
    assert sum(delivered.values()) <= len(outbound) + kills["mail"] + kills["any"], delivered
    counts = assert_consistent()
    assert counts["messages"] == sent == N_CASES
    print(f"worker-kill: kills={kills} sent={sent} stored={counts['messages']} acks={len(outbound)} "
          f"deliveries={sum(delivered.values())} distinct={len(delivered)} llm_requests={len(llm.requests)}")


# ---------------------------------------------------------------- the app killed during an API burst


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "casemgr.cli", "serve", "--port", str(port), "--no-upgrade"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail("casemgr serve did not start")
        time.sleep(0.1)
    proc.kill()
    pytest.fail("casemgr serve did not answer /healthz")


def test_app_sigkilled_during_api_burst_keeps_every_2xx_and_half_writes_nothing(api_key: Any) -> None:
    key = api_key("agent")
    env = os.environ.copy()
    port = free_port()
    proc = _serve(env, port)
    results: dict[str, int | str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    total = 400

    def client(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=10) as c:
            for i in range(worker, total, 8):
                if stop.is_set():
                    return
                ext = f"burst-{i}"
                try:
                    r = c.post("/api/intake", json={"subject": f"burst {i}", "body": "Charged twice.",
                                                    "external_id": ext, "sender": {"email": f"b{i}@example.org"}})
                    code: int | str = r.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    results[ext] = code

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(1 for v in results.values() if v == 201) < 40:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: requests are in flight
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    ok = {ext for ext, code in results.items() if code in (200, 201)}
    failed = {ext for ext, code in results.items() if code not in (200, 201)}
    assert len(ok) >= 40 and failed, (len(ok), Counter(results.values()))
    with read_session() as s:
        stored = {m.subject.replace("burst ", "burst-"): m for m in
                  s.execute(select(Message).where(Message.channel == "api")).scalars()}
    assert ok <= set(stored), f"acknowledged but lost: {sorted(ok - set(stored))[:5]}"
    # A request that got an error may have committed just before the kill: if so, it is whole (checked below).
    counts = assert_consistent()
    assert counts["messages"] == len(stored)
    out = cli("audit", "verify", env=env)
    assert out.returncode == 0 and "intact" in out.stdout, out.stdout + out.stderr

    # The clients retry everything that failed; each is stored once, earlier ones come back as duplicates.
    proc = _serve(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as c:
            for ext in sorted(failed | ok):
                i = int(ext.split("-")[1])
                r = c.post("/api/intake", json={"subject": f"burst {i}", "body": "Charged twice.",
                                                "external_id": ext, "sender": {"email": f"b{i}@example.org"}})
                assert r.status_code == (200 if ext in stored else 201), (ext, r.status_code, r.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    counts = assert_consistent()
    assert counts["messages"] == counts["cases"] == len(failed | ok)
    print(f"app-kill: sent={len(results)} acknowledged={len(ok)} errors={len(failed)} stored_before_retry="
          f"{len(stored)} stored_after_retry={counts['messages']}")
