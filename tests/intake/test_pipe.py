"""`casemgr intake pipe` (issue 23): one message on stdin for an MTA, answered with a sysexits code."""

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
from casemgr.config import get_settings, reset_settings
from casemgr.db import read_session
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.intake.pipe import EX_DATAERR, EX_OK, EX_TEMPFAIL, EX_USAGE, run
from casemgr.jobs.models import Job

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


def test_stored_once_on_redelivery_and_ai_left_to_the_worker() -> None:
    raw = mail("<pipe-1@example.org>")
    assert pipe(raw, "--source", "postfix:ABC123")[0] == EX_OK
    # The MTA lost our answer and delivers again: still one message, one case, exit 0 (do not bounce it).
    assert pipe(raw)[0] == EX_OK
    assert count(Message, Message.direction == "inbound") == 1
    assert count(Case) == 1
    with read_session() as s:
        msg = s.execute(select(Message).where(Message.direction == "inbound")).scalars().one()
        assert msg.channel == "email" and msg.raw == raw
        kinds = list(s.execute(select(Job.kind)).scalars())
    assert kinds.count("ai.enrich") == 1  # enrichment queued for the worker, not run in the pipe process


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
    reset_settings()
    code, err = pipe(mail("<pipe-2@example.org>"))
    assert code == EX_TEMPFAIL and "NOT STORED" in err


@pytest.mark.sqlite_only
def test_held_write_lock_is_a_temporary_failure_and_nothing_is_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_SQLITE_BUSY_TIMEOUT_MS", "100")
    reset_settings()
    db_file = get_settings().effective_database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(db_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing and does not let go in time
    try:
        code, err = pipe(mail("<pipe-3@example.org>"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == EX_TEMPFAIL, err
    assert count(Message, Message.direction == "inbound") == 0
    # The MTA retries once the writer is gone: now it is stored.
    assert pipe(mail("<pipe-3@example.org>"))[0] == EX_OK
    assert count(Message, Message.direction == "inbound") == 1


def test_usage_error() -> None:
    assert pipe(mail("<pipe-4@example.org>"), "--bogus")[0] == EX_USAGE


def test_console_entry_skips_typer_models_and_migrations() -> None:
    """The real entry point: `casemgr intake pipe` stores the message without importing the CLI framework,
    the AI libraries or alembic (start-up cost is what an MTA pays per message)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "from casemgr.cli import main; main()",
                           "intake", "pipe", "--source", "test"], input=mail("<pipe-5@example.org>"),
                          capture_output=True, env=env, timeout=120, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == EX_OK, err[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")}
    assert "casemgr.intake.service" in imported
    for heavy in ("typer", "alembic", "sklearn", "numpy", "casemgr.migrate", "casemgr.governance.enrich"):
        assert heavy not in imported, heavy
    assert count(Message, Message.direction == "inbound") == 1
