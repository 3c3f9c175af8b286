"""The database is locked or unavailable during intake: SMTP answers 4xx, the form shows a retry page (503), the
API answers 503 with a clear message; nothing is half-written. After recovery the senders' retries are stored
once each, and a second retry is recognised as a duplicate."""

from __future__ import annotations

import os
import re
import smtplib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casemgr.bench.serving import free_port
from casemgr.config import get_settings
from casemgr.runtime import rebuild

from .helpers import assert_consistent, case_count, inbound_count, raw_mail, send_mail

PG_URL = os.environ.get("CASEMGR_TEST_DATABASE_URL")
N = 3  # per channel


@contextmanager
def locked_sqlite(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Another process holds an exclusive lock on the SQLite file (a long backup, a stuck migration)."""
    monkeypatch.setenv("CASEMGR_SQLITE_BUSY_TIMEOUT_MS", "300")
    rebuild()
    locker = sqlite3.connect(get_settings().resolved_data_dir / "casemgr.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@contextmanager
def unavailable_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The database server is gone (PostgreSQL: nothing listens; SQLite: the volume is not mounted)."""
    real = os.environ.get("CASEMGR_DATABASE_URL")
    dead = (f"postgresql://casemgr:pw@127.0.0.1:{free_port()}/casemgr" if PG_URL
            else "sqlite:////nonexistent-casemgr-volume/casemgr.sqlite3")
    monkeypatch.setenv("CASEMGR_DATABASE_URL", dead)
    rebuild()
    try:
        yield
    finally:
        if real is None:
            monkeypatch.delenv("CASEMGR_DATABASE_URL")
        else:
            monkeypatch.setenv("CASEMGR_DATABASE_URL", real)
        rebuild()


def _form_token(client: TestClient) -> str:
    page = client.get("/submit/complaint")
    assert page.status_code == 200
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m
    return m.group(1)


def _form(i: int, token: str) -> dict[str, str]:
    return {"name": f"Form Sender {i}", "email": f"form{i}@example.org", "subject": f"form outage {i}",
            "description": "My card was charged twice for one purchase.", "csrf_token": token}


def _api(i: int) -> dict[str, Any]:
    return {"subject": f"api outage {i}", "body": "Customer called about fees.", "external_id": f"crm-{i}"}


@pytest.mark.parametrize("fault", [
    pytest.param("locked", marks=pytest.mark.sqlite_only),
    "unavailable",
])
def test_intake_during_database_outage_loses_nothing_and_stores_retries_once(
    fault: str, monkeypatch: pytest.MonkeyPatch, intake_smtp: tuple[str, int], app: Any, api_key: Any
) -> None:
    key = {"X-API-Key": api_key("agent")}
    client = TestClient(app, raise_server_exceptions=False)
    outage = locked_sqlite(monkeypatch) if fault == "locked" else unavailable_db(monkeypatch)
    # A sending MTA retries the very bytes it queued (a new Date would make it a different message).
    mails = [raw_mail(f"<outage-{i}@example.org>", subject=f"mail outage {i}") for i in range(N)]
    with outage:
        for i in range(N):
            with pytest.raises(smtplib.SMTPDataError) as err:
                send_mail(intake_smtp, mails[i])
            assert 400 <= err.value.smtp_code < 500, err.value
            res = client.post("/submit/complaint", data=_form(i, _form_token(client)))
            assert res.status_code == 503, res.text[:300]
            assert "try again" in res.text.lower() and f'value="form outage {i}"' in res.text
            res = client.post("/api/intake", json=_api(i), headers=key)
            assert res.status_code == 503, res.text[:300]
            assert res.headers.get("retry-after") and "retry" in res.json()["detail"]
    assert inbound_count() == 0 and case_count() == 0  # nothing half-written

    # Recovery: every sender retries (mail servers and API clients twice); every message is stored once.
    sent = 0
    for i in range(N):
        for attempt in range(2):
            assert send_mail(intake_smtp, mails[i]) == {}
            res = client.post("/api/intake", json=_api(i), headers=key)
            assert res.status_code == (201 if attempt == 0 else 200), res.text
            assert res.json()["status"] == ("case" if attempt == 0 else "duplicate")
        res = client.post("/submit/complaint", data=_form(i, _form_token(client)))
        assert res.status_code == 200, res.text[:300]
        sent += 3
    counts = assert_consistent()
    assert counts["messages"] == sent == 3 * N and counts["cases"] == 3 * N
