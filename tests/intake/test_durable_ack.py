"""Durable before 250 (issue 19): strace the real `casemgr smtp` process and show that between the moment a
message is written to the database and the `250` sent for it, the database was fsynced.

Messages are sent one after another, so the trace reads in order: for each `250 2.0.0 Message accepted` sent on
the socket, the database's WAL was written since the previous 250 (the store), and an fsync/fdatasync came after
the last WAL write (the store made durable) and before the 250.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from casemgr.bench.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
N = 12


def _mail(i: int) -> bytes:
    return (f"From: Ann {i} <ann{i}@example.org>\r\nTo: complaints@example.com\r\nSubject: durable {i}\r\n"
            f"Message-ID: <durable.{i}@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n"
            f"My card was charged twice, message {i}.\r\n").encode()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "casemgr smtp exited early"
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as s:
                s.noop()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("casemgr smtp did not start")


@pytest.mark.slow
@pytest.mark.sqlite_only  # PostgreSQL fsyncs in its own server process; this traces SQLite in the smtp process
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed (scripts/test.sh installs it)")
def test_every_250_follows_an_fsync_of_the_stored_message(tmp_path: Path) -> None:
    port = free_port()
    trace = tmp_path / "smtp.strace"
    env = {**os.environ, "CASEMGR_INTAKE_ACK": "false", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-y", "-s", "60", "-e", "trace=fsync,fdatasync,sendto,write,pwrite64", "-o", str(trace),
         sys.executable, "-m", "casemgr.cli", "smtp", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)

        def send(i: int) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
                s.sendmail(f"ann{i}@example.org", ["complaints@example.com"], _mail(i))

        for i in range(N):
            send(i)
    finally:
        # SIGTERM to strace would only detach it; stop the traced `casemgr smtp` itself, strace then exits.
        children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, sig)
            try:
                proc.wait(15)
                break
            except subprocess.TimeoutExpired:
                continue
    lines = trace.read_text(errors="replace").splitlines()
    acks = 0
    stored = False  # WAL written since the previous 250
    writes = synced = 0  # WAL writes seen; how many of them an fsync covered
    started: dict[str, int] = {}  # thread -> WAL writes seen when its fsync began, while strace shows it unfinished
    for line in lines:
        tid = line.split(" ", 1)[0]
        # With -f, a syscall another thread interrupts is printed in two lines ("<unfinished ...>", then
        # "<... fsync resumed>"): under load an fsync of the store was split by the WAL checkpoint thread.
        # An fsync covers the writes made before it began.
        db_sync = re.search(r"\b(fsync|fdatasync)\(\d+<[^>]*casemgr\.sqlite3(-wal)?>", line)
        if db_sync and line.endswith("= 0"):
            synced = writes
        elif db_sync and line.endswith("<unfinished ...>"):
            started[tid] = writes
        elif re.search(r"<\.\.\. (fsync|fdatasync) resumed>", line) and tid in started:
            if line.endswith("= 0"):
                synced = max(synced, started[tid])
            del started[tid]
        elif re.search(r"\b(p?write(64)?)\(\d+<[^>]*casemgr\.sqlite3-wal>", line):
            stored = True
            writes += 1
        elif "250 2.0.0 Message accepted" in line:
            acks += 1
            assert stored, f"250 number {acks} was sent without a database write since the previous 250"
            assert synced == writes, f"250 number {acks} was sent before the stored message was fsynced"
            stored = False
    assert acks == N, f"saw {acks} acknowledgements in the trace, sent {N}"
