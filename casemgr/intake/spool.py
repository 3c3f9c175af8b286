"""The mail spool of `casemgr intake pipe`: store the raw message durably, let the worker make the case.

Why a spool: an MTA starts one process per message, and building a case needs the ORM, the case types, the
rules, SLA calendars and the audit chain (1.3 s of CPU to import and load them). The pipe instead checks the
message with the same parser as every intake path (casemgr.intake.parse, standard library only), writes the
raw bytes and an `intake.spool` job in ONE durable transaction with the database driver alone (sqlite3 with
synchronous=FULL, or psycopg), and answers 0. The worker's job then runs `ingest_raw` exactly as
`casemgr intake eml` does (threading, dedup by Message-ID, routing, audit, AI job) and deletes the spool row.
What could be stored is never lost: a row the worker cannot turn into a case stays in the spool with the job's
error, and ingest_raw quarantines what it refuses.

This module must stay cheap to import: the standard library at module level, psycopg only for PostgreSQL.
The settings it reads mirror casemgr.config.Settings (tests/intake/test_spool.py checks both agree).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JOB_KIND = "intake.spool"
MAX_ATTEMPTS = 8  # as jobs.service.enqueue's default


@dataclass(frozen=True)
class Target:
    """Where the pipe writes, from the same CASEMGR_* variables as casemgr.config.Settings."""

    url: str  # a libpq URL for PostgreSQL, or "" for the SQLite file
    sqlite_path: Path
    busy_timeout_s: float
    max_message_bytes: int


def target(environ: dict[str, str] | None = None) -> Target:
    env = os.environ if environ is None else environ
    url = env.get("CASEMGR_DATABASE_URL", "").strip()
    sqlite_path = Path(env.get("CASEMGR_DATA_DIR") or "./data").resolve() / "casemgr.sqlite3"
    if url.startswith("sqlite"):  # sqlite:///relative or sqlite:////absolute, as SQLAlchemy reads it
        sqlite_path, url = Path(url.split(":///", 1)[1]), ""
    elif url.startswith("postgresql+psycopg://"):
        url = "postgresql://" + url[len("postgresql+psycopg://"):]
    return Target(url=url, sqlite_path=sqlite_path,
                  busy_timeout_s=int(env.get("CASEMGR_SQLITE_BUSY_TIMEOUT_MS") or 15000) / 1000,
                  max_message_bytes=int(env.get("CASEMGR_MAX_MESSAGE_BYTES") or 25 * 1024 * 1024))


def _sqlite_time(at: datetime) -> str:
    """SQLAlchemy's SQLite form of a UTC datetime (what the worker's run_at <= now comparison reads)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def store(raw: bytes, source: str | None, recipients: list[str], where: Target) -> int:
    """Write the message and its job in one durable transaction; returns the spool id. Raises on failure."""
    at = datetime.now(UTC)
    rcpt = json.dumps(recipients)
    if where.url:
        return _store_pg(raw, source, rcpt, at, where.url)
    return _store_sqlite(raw, source, rcpt, at, where)


def _job_values(spool_id: int) -> tuple[str, str, str]:
    return JOB_KIND, json.dumps({"spool_id": spool_id}), f"{JOB_KIND}:{spool_id}"


def _store_sqlite(raw: bytes, source: str | None, rcpt: str, at: datetime, where: Target) -> int:
    import sqlite3

    if not where.sqlite_path.exists():
        raise FileNotFoundError(f"no database at {where.sqlite_path} (run `casemgr db upgrade`)")
    conn = sqlite3.connect(where.sqlite_path, timeout=where.busy_timeout_s, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=FULL")  # durable before the MTA hears 0 (as every intake ack)
        _begin_immediate(conn, where.busy_timeout_s)
        try:
            ts = _sqlite_time(at)
            cur = conn.execute("INSERT INTO intake_spool (raw, source, envelope_to, received_at) VALUES (?, ?, ?, ?)",
                               (raw, source, rcpt, ts))
            spool_id = int(cur.lastrowid or 0)
            kind, payload, key = _job_values(spool_id)
            conn.execute("INSERT INTO jobs (kind, payload, idempotency_key, status, run_at, attempts, max_attempts, "
                         "created_at) VALUES (?, ?, ?, 'queued', ?, 0, ?, ?)", (kind, payload, key, ts, MAX_ATTEMPTS, ts))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return spool_id
    finally:
        conn.close()


def _begin_immediate(conn: Any, timeout_s: float) -> None:
    # As casemgr.db: retry BEGIN IMMEDIATE every 0.5-5 ms rather than SQLite's 25-100 ms busy sleeps.
    import sqlite3

    deadline = time.monotonic() + timeout_s
    delay = 0.0005
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.005)


def _store_pg(raw: bytes, source: str | None, rcpt: str, at: datetime, url: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:  # commits on a clean exit, rolls back on error
        row = conn.execute("INSERT INTO intake_spool (raw, source, envelope_to, received_at) "
                           "VALUES (%s, %s, %s::json, %s) RETURNING id", (raw, source, rcpt, at)).fetchone()
        spool_id = int(row[0]) if row else 0
        kind, payload, key = _job_values(spool_id)
        conn.execute("INSERT INTO jobs (kind, payload, idempotency_key, status, run_at, attempts, max_attempts, "
                     "created_at) VALUES (%s, %s::json, %s, 'queued', %s, 0, %s, %s)",
                     (kind, payload, key, at, MAX_ATTEMPTS, at))
    return spool_id
