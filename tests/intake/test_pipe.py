"""`casemgr intake pipe` (issue 23): one message on stdin for an MTA, answered with a sysexits code.

The pipe stores the message in the mail spool with its job; the worker (run_jobs) makes the case."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from casemgr.cases.models import Case
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.intake import spool
from casemgr.intake.models import Message, QuarantinedMessage, SpooledMessage
from casemgr.intake.pipe import EX_DATAERR, EX_OK, EX_TEMPFAIL, EX_USAGE, run
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild

ROOT = Path(__file__).resolve().parents[2]


def mail(mid: str, subject: str = "My card was charged twice") -> bytes:
    return (f"From: Ann Lee <ann@example.org>\r\nTo: complaints@example.com\r\nSubject: {subject}\r\n"
            f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: {mid}\r\n\r\nPlease refund me.\r\n").encode()


def count(model: type, *where: object) -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())  # type: ignore[arg-type]


def pipe(raw: bytes, *argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = run(list(argv), stdin=io.BytesIO(raw), stderr=err)
    return code, err.getvalue()


def test_stored_once_on_redelivery_and_ai_left_to_the_worker(run_jobs) -> None:  # type: ignore[no-untyped-def]
    raw = mail("<pipe-1@example.org>")
    assert pipe(raw, "--source", "postfix:ABC123", "--recipient", "complaints@example.com")[0] == EX_OK
    # The MTA lost our answer and delivers again: still one message, one case, exit 0 (do not bounce it).
    assert pipe(raw)[0] == EX_OK
    assert count(SpooledMessage) == 2 and count(Case) == 0  # acknowledged = durably spooled, not yet a case
    with read_session() as s:
        first = s.execute(select(SpooledMessage).order_by(SpooledMessage.id)).scalars().first()  # type: ignore[arg-type]
        assert first is not None and first.raw == raw and first.source == "postfix:ABC123"
        assert first.envelope_to == ["complaints@example.com"]
    run_jobs()
    assert count(SpooledMessage) == 0
    assert count(Message, Message.direction == "inbound") == 1
    assert count(Case) == 1
    with read_session() as s:
        msg = s.execute(select(Message).where(Message.direction == "inbound")).scalars().one()
        assert msg.channel == "email" and msg.raw == raw
        kinds = list(s.execute(select(Job.kind)).scalars())
    assert kinds.count("ai.enrich") == 1  # enrichment queued for the worker, not run in the pipe process
    assert kinds.count(spool.JOB_KIND) == 2


def test_spool_reads_the_settings_the_app_reads(tmp_path: Path) -> None:
    """The pipe cannot import casemgr.config (pydantic-settings): its own reading must agree with it."""
    cases = [
        {"CASEMGR_DATA_DIR": str(tmp_path / "d")},
        {"CASEMGR_DATA_DIR": str(tmp_path / "d"), "CASEMGR_DATABASE_URL": f"sqlite:///{tmp_path}/x/db.sqlite3",
         "CASEMGR_SQLITE_BUSY_TIMEOUT_MS": "250", "CASEMGR_MAX_MESSAGE_BYTES": "1000"},
        {"CASEMGR_DATABASE_URL": "postgresql://u@127.0.0.1:5/db"},
        {"CASEMGR_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:5/db"},
    ]
    from casemgr.config import Settings

    for env in cases:
        mp = pytest.MonkeyPatch()
        for k in ("CASEMGR_DATA_DIR", "CASEMGR_DATABASE_URL", "CASEMGR_SQLITE_BUSY_TIMEOUT_MS",
                  "CASEMGR_MAX_MESSAGE_BYTES"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        try:
            app, mine = Settings(), spool.target()
        finally:
            mp.undo()
        assert mine.busy_timeout_s == app.sqlite_busy_timeout_ms / 1000 and mine.max_message_bytes == app.max_message_bytes
        url = app.effective_database_url
        if url.startswith("sqlite"):
            assert mine.url == "" and f"sqlite:///{mine.sqlite_path}" == url, env
        else:
            assert mine.url == url.replace("postgresql+psycopg://", "postgresql://"), env


def test_oversized_message_is_quarantined_then_exit_65(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_MAX_MESSAGE_BYTES", "100")
    rebuild()
    code, err = pipe(mail("<pipe-big@example.org>", subject="x" * 200))
    assert code == EX_DATAERR and "quarantined #" in err
    assert count(QuarantinedMessage) == 1 and count(SpooledMessage) == 0


def test_unusable_message_is_quarantined_then_exit_65() -> None:
    bad = b"From: x\x00\x01\r\nSubject: \xff\r\n\r\n\x00binary"
    code, err = pipe(bad)
    assert code == EX_DATAERR and "quarantined #" in err
    assert pipe(bad)[0] == EX_DATAERR  # the same bad message again: one quarantine record, same answer
    assert count(QuarantinedMessage) == 1
    assert count(Case) == 0
    assert pipe(b"\r\n  \n")[0] == EX_DATAERR  # an empty delivery


def test_unreachable_database_is_a_temporary_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_DATABASE_URL", f"sqlite:///{tmp_path}/no/such/dir/casemgr.sqlite3")
    rebuild()
    code, err = pipe(mail("<pipe-2@example.org>"))
    assert code == EX_TEMPFAIL and "NOT STORED" in err


@pytest.mark.sqlite_only
def test_held_write_lock_is_a_temporary_failure_and_nothing_is_stored(monkeypatch: pytest.MonkeyPatch,
                                                                      run_jobs) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASEMGR_SQLITE_BUSY_TIMEOUT_MS", "100")
    rebuild()
    db_file = get_settings().effective_database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(db_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing and does not let go in time
    try:
        code, err = pipe(mail("<pipe-3@example.org>"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == EX_TEMPFAIL, err
    assert count(SpooledMessage) == 0 and count(Job) == 0
    # The MTA retries once the writer is gone: now it is stored.
    assert pipe(mail("<pipe-3@example.org>"))[0] == EX_OK
    run_jobs()
    assert count(Message, Message.direction == "inbound") == 1


def test_usage_error() -> None:
    assert pipe(mail("<pipe-4@example.org>"), "--bogus")[0] == EX_USAGE


def test_console_entry_skips_typer_models_and_migrations(run_jobs) -> None:  # type: ignore[no-untyped-def]
    """The real entry point: `casemgr intake pipe` stores the message without importing the CLI framework,
    the ORM, the settings, the models, the AI libraries or alembic (start-up is what an MTA pays per message)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "from casemgr.cli import main; main()",
                           "intake", "pipe", "--source", "test"], input=mail("<pipe-5@example.org>"),
                          capture_output=True, env=env, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == EX_OK, err[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    assert "casemgr.intake.spool" in imported and "casemgr.intake.parse" in imported
    for heavy in ("typer", "alembic", "sklearn", "numpy", "casemgr.migrate", "casemgr.governance.enrich",
                  "sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings", "casemgr.config", "casemgr.intake.service",
                  "casemgr.casetypes.registry", "yaml"):
        assert heavy not in imported, heavy
    run_jobs()
    assert count(Message, Message.direction == "inbound") == 1


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_startup_per_message_is_measured_and_every_message_stored_once() -> None:
    """`casemgr bench pipe` in small: CPU per start (robust to a loaded host; wall time and the load are
    reported beside it) under the 300 ms target, and every acknowledged message stored exactly once."""
    import json

    from casemgr.bench import pipe as pipe_bench

    res = pipe_bench.run(n=5)
    print(json.dumps(res))
    assert res["stored_once"], res
    assert res["pipe_cpu_p50_ms"] <= pipe_bench.TARGET_MS, res
