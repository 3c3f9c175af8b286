"""Conformance on the dashboard and /api/conformance: the snapshot the worker refreshes, and bad input."""

from __future__ import annotations

import re
from datetime import timedelta

from casemgr.clock import now
from casemgr.conformance import service
from casemgr.db import read_session
from casemgr.jobs.service import enqueue

from .helpers import imported_case


def _seed() -> None:
    t0 = now() - timedelta(days=3)
    imported_case("complaint", ["intake", "triage", "resolution", "feedback", "closed"], t0, closed=True)
    imported_case("complaint", ["intake", "investigation"], t0 + timedelta(hours=1))
    imported_case("onboarding", ["hr_setup", "it_setup", "hr_setup"], t0 + timedelta(hours=2))


def test_dashboard_shows_conformance_per_type(client, api_key) -> None:  # type: ignore[no-untyped-def]
    _seed()
    lead = {"X-API-Key": api_key("lead")}
    r = client.get("/dashboard", headers=lead)
    assert r.status_code == 200, r.text
    assert "Process conformance" in r.text
    cell = re.search(r'data-conformance="complaint">([^<]+)<', r.text)
    assert cell and cell.group(1).strip() == "1 (50.0 %)"
    assert "undesigned move" in r.text and "intake → investigation" in r.text
    assert "Handoff delays between owner roles" in r.text  # onboarding: hr -> it
    only = client.get("/dashboard?type=onboarding", headers=lead).text
    assert 'data-conformance="onboarding"' in only and 'data-conformance="complaint"' not in only
    data = client.get("/api/conformance?type=complaint", headers=lead).json()
    assert list(data["case_types"]) == ["complaint"]
    assert (data["case_types"]["complaint"]["cases"], data["case_types"]["complaint"]["conforming"]) == (2, 1)
    bad = client.get("/api/conformance?type=warranty", headers=lead)
    assert bad.status_code == 422 and "unknown case type 'warranty'" in bad.json()["detail"]
    assert client.get("/api/conformance", headers={"X-API-Key": api_key("agent")}).status_code == 403


def test_worker_job_refreshes_the_snapshot(run_jobs) -> None:  # type: ignore[no-untyped-def]
    _seed()
    with read_session() as s:
        first = service.snapshot(s)  # computed on first use and stored
    assert first["case_types"]["complaint"]["cases"] == 2
    imported_case("complaint", ["intake", "closed"], now() - timedelta(hours=5), closed=True)
    with read_session() as s:
        assert service.snapshot(s)["case_types"]["complaint"]["cases"] == 2  # the stored figures until a refresh
    from casemgr.db import write_session

    with write_session() as s:
        enqueue(s, "conformance.refresh", {})
    run_jobs()
    with read_session() as s:
        again = service.snapshot(s)["case_types"]["complaint"]
    assert again["cases"] == 3
    # intake -> closed skips triage (as intake -> investigation did) and feedback (only it)
    assert {"kind": "skipped_stage", "what": "triage", "cases": 2, "share": round(2 / 3, 4)} in again["deviations"]
    assert {"kind": "skipped_stage", "what": "feedback", "cases": 1, "share": round(1 / 3, 4)} in again["deviations"]
