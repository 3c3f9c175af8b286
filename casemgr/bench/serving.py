"""Start and stop server subprocesses (the real `casemgr serve`, the floor, workers) on loopback ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/healthz", timeout_s: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def process(args: list[str], env: dict[str, str], *, port: int | None = None, health: str = "/healthz",
            log: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run `args` with `env` added to ours; wait for HTTP on `port` if given; stop it (SIGTERM) afterwards."""
    full_env = {**os.environ, **env}
    if args[1:2] == ["serve"] and "CASEMGR_EMBEDDED_WORKER" not in env:
        # Benchmarks measure app workers as deployed at scale: jobs (AI, SLA, mail) run in `casemgr worker`
        # processes the benchmark starts itself, neither in a worker thread nor in the worker `serve` starts.
        full_env["CASEMGR_EMBEDDED_WORKER"] = "0"
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, env=full_env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
    try:
        if port is not None:
            wait_http(port, health, proc=proc)
        yield proc
    finally:
        _stop(proc)
        if log:
            out.close()  # type: ignore[union-attr]


def serve_args(port: int, workers: int) -> list[str]:
    """Exactly what production runs: `casemgr serve` (uvicorn, uvloop + httptools)."""
    return [str(BIN / "casemgr"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--no-upgrade", "--no-worker"]


def floor_args(port: int, workers: int) -> list[str]:
    """The floor app under the same uvicorn settings as `casemgr serve`."""
    return [sys.executable, "-m", "uvicorn", "casemgr.bench.floor:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning"]


def worker_args(*extra: str) -> list[str]:
    return [str(BIN / "casemgr"), "worker", "--no-schedule", "--poll-seconds", "0.05", *extra]


def restore_env(saved: dict[str, str | None]) -> None:
    """Put back environment variables a benchmark changed (None: it was unset), then re-read the settings."""
    from casemgr.runtime import rebuild

    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    rebuild()


@contextmanager
def bench_database(database_url: str | None, prefix: str = "casemgr-bench-",
                   data_dir: str | None = None) -> Iterator[dict[str, str]]:
    """A throw-away SQLite data dir (or the given database), migrated; yields the env for subprocesses. The
    environment and settings are put back afterwards. One copy for every benchmark that needs a scratch database.
    `data_dir` reuses an existing SQLite data dir instead (kept afterwards; a loaded million-case soak database)."""
    from casemgr import migrate
    from casemgr.runtime import rebuild

    saved = {k: os.environ.get(k) for k in ("CASEMGR_DATA_DIR", "CASEMGR_DATABASE_URL")}
    tmp = str(Path(data_dir).resolve()) if data_dir else tempfile.mkdtemp(prefix=prefix)
    env = {"CASEMGR_DATA_DIR": tmp}
    if database_url and not data_dir:
        env["CASEMGR_DATABASE_URL"] = database_url
    os.environ.update(env)
    if "CASEMGR_DATABASE_URL" not in env:
        os.environ.pop("CASEMGR_DATABASE_URL", None)
    rebuild()
    try:
        migrate.upgrade()
        yield env
    finally:
        restore_env(saved)
        if not data_dir:
            shutil.rmtree(tmp, ignore_errors=True)


def require_empty(table: str = "cases") -> None:
    """A benchmark fills a given PostgreSQL database: refuse one that already holds rows (they would be measured)."""
    from sqlalchemy import text

    from casemgr.db import read_session

    with read_session() as s:
        if s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one():
            raise RuntimeError(f"the bench database must be empty (it holds {table})")
