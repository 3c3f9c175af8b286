"""A job handler with a countable side effect, loaded by worker subprocesses via `--import <this file>`."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from casemgr.jobs.service import job_handler

EFFECTS_DDL = "CREATE TABLE IF NOT EXISTS job_effects (job_id INTEGER NOT NULL, worker VARCHAR(200))"


@job_handler("test.effect")
def effect(session, job) -> None:  # type: ignore[no-untyped-def]
    payload = job.payload or {}
    if payload.get("started_file"):
        # Outside the transaction on purpose: shows which jobs a worker began, committed or not.
        with open(payload["started_file"], "a", encoding="utf-8") as fh:
            fh.write(f"{job.id}\n")
            fh.flush()
    session.execute(text("INSERT INTO job_effects (job_id, worker) VALUES (:id, :w)"), {"id": job.id, "w": job.locked_by})
    if payload.get("fail_until_attempt", 0) >= job.attempts:
        raise RuntimeError(f"planned failure on attempt {job.attempts}")
    if payload.get("sleep"):
        time.sleep(float(payload["sleep"]))


def effect_file() -> str:
    return str(Path(__file__).resolve())


@job_handler("test.own_tx", own_transactions=True)
def own_tx(session, job) -> None:  # type: ignore[no-untyped-def]
    # Opens its own write transaction: would wait for the lock (SQLite) if the worker held one around it.
    from casemgr.db import write_session

    with write_session() as ws:
        ws.execute(text("INSERT INTO job_effects (job_id, worker) VALUES (:id, 'own')"), {"id": job.id})
