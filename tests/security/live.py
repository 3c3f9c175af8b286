"""A real `casemgr serve` process on 127.0.0.1 for availability tests (issue 18).

It runs in its own process, as in production, so a server that freezes (the GIL held in C) makes the test
fail on its timeouts instead of freezing pytest. It is killed with SIGKILL at the end: a frozen process
ignores SIGTERM.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from casemgr.bench.serving import free_port


@contextmanager
def live_server(**env: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "casemgr.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--no-worker", "--no-upgrade"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "casemgr serve exited at start-up"
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "casemgr serve did not start within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.kill()
        proc.wait(10)
