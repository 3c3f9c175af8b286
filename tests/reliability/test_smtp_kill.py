"""`casemgr smtp` SIGKILLed during a burst (issue 19): every message that got a 250 is stored exactly once, and the
ones that did not are stored once when their senders retry, as a real MTA does (same bytes)."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from casemgr.bench.serving import free_port
from casemgr.db import read_session
from casemgr.intake.models import Message

from .helpers import CASEMGR, ROOT, assert_consistent

SENDERS = 8
PER_SENDER = 25
KILL_AFTER_ACKS = 60


def _mail(i: int) -> bytes:
    return (f"From: Sender {i} <s{i}@example.org>\r\nTo: complaints@example.com\r\nSubject: burst {i}\r\n"
            f"Message-ID: <burst-{i}@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n"
            f"My card was charged twice ({i}).\r\n").encode()


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*CASEMGR, "smtp", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "casemgr smtp exited"
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                s.noop()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("casemgr smtp did not start")


def _send(port: int, i: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            return s.sendmail(f"s{i}@example.org", ["complaints@example.com"], _mail(i)) == {}
    except (OSError, smtplib.SMTPException):
        return False


@pytest.mark.slow
def test_smtp_sigkilled_during_a_burst_keeps_every_250_exactly_once() -> None:
    env = {**os.environ, "CASEMGR_AI_INLINE": "false", "PYTHONPATH": str(ROOT)}
    port = free_port()
    proc = _start(port, env)
    acked: set[int] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def sender(k: int) -> None:
        for j in range(PER_SENDER):
            i = k * PER_SENDER + j
            if _send(port, i):
                with lock:
                    acked.add(i)
                    if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                        killed.set()
                        os.kill(proc.pid, signal.SIGKILL)

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(sender, range(SENDERS)))
    proc.wait(30)
    assert killed.is_set() and proc.returncode == -signal.SIGKILL
    total = SENDERS * PER_SENDER
    assert KILL_AFTER_ACKS <= len(acked) < total  # the kill cut the burst short
    with read_session() as s:
        stored = Counter(s.execute(select(Message.message_id).where(Message.direction == "inbound")).scalars())
    for i in acked:  # acknowledged before the kill: on disk, once
        assert stored[f"<burst-{i}@example.org>"] == 1, i
    # The senders' MTAs retry everything without a 250 (and a few whose 250 they may not have seen).
    proc = _start(port, env)
    try:
        retry = [i for i in range(total) if i not in acked] + sorted(acked)[:10]
        with ThreadPoolExecutor(SENDERS) as pool:
            assert all(pool.map(lambda i: _send(port, i), retry))
    finally:
        proc.terminate()
        proc.wait(30)
    with read_session() as s:
        stored = Counter(s.execute(select(Message.message_id).where(Message.direction == "inbound")).scalars())
    assert all(stored[f"<burst-{i}@example.org>"] == 1 for i in range(total)), stored
    counts = assert_consistent()
    assert counts["messages"] == total
