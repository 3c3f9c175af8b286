"""Dashboard figures on the demo data against independent SQL, the page, CSV export and /metrics."""

from __future__ import annotations

import base64
import csv
import io
import math
import re

import pytest
from sqlalchemy import select, text

from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.metrics import service
from casemgr.sla.clock import due_at


@pytest.fixture
def demo() -> None:
    """A small demo data set (the full one is checked once, below)."""
    from casemgr.demo import seed_cases

    seed_cases(n_complaints=40, n_contracts=15)
    with write_session() as s:
        service.refresh(s)


@pytest.fixture
def full_demo() -> None:
    from casemgr.demo import run_demo

    run_demo()
    with write_session() as s:
        service.refresh(s)


def _durations_sql(s) -> dict[tuple[str, str], list[tuple[float, float, float]]]:  # type: ignore[no-untyped-def]
    """(entered epoch, left epoch, seconds) of every finished stage visit, straight from stage_history."""
    if s.get_bind().dialect.name == "sqlite":
        ep = "(julianday({c}) - 2440587.5) * 86400.0"
    else:
        ep = "extract(epoch from {c})::float8"
    rows = s.execute(text(
        f"SELECT case_type, stage, {ep.format(c='entered_at')}, {ep.format(c='left_at')} "
        "FROM stage_history WHERE left_at IS NOT NULL")).all()
    out: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for ct, st, e, left in rows:
        out.setdefault((ct, st), []).append((float(e), float(left), float(left) - float(e)))
    return out


def _nearest_rank(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[max(1, math.ceil(p * len(v))) - 1]


def test_cycle_time_and_breach_figures_match_independent_sql(full_demo: None) -> None:
    from datetime import UTC, datetime

    reg = get_registry()
    with read_session() as s:
        d = service.dashboard(s, days=400)
        visits = _durations_sql(s)
        t = now()
        open_with_sla, breached_now = s.execute(text(
            "SELECT count(*), sum(CASE WHEN sla_state = 'breached' OR sla_due_at < :t THEN 1 ELSE 0 END) FROM cases "
            "WHERE status = 'open' AND (sla_due_at IS NOT NULL OR sla_state IN ('breached', 'at_risk'))"), {"t": t}).one()
        open_by_stage = dict(((ct, st), n) for ct, st, n in s.execute(text(
            "SELECT case_type, stage, count(*) FROM cases WHERE status = 'open' GROUP BY case_type, stage")).all())
    rows = {(r["case_type"], r["stage"]): r for r in d["cycle_time"]}
    finals = {(ct.name, sd.name) for ct in reg.case_types.values() for sd in ct.stages if sd.final}
    expected_keys = {k for k in visits if k not in finals}
    assert set(rows) == expected_keys and len(rows) >= 8
    total_with, total_breached = 0, 0
    for key, vs in visits.items():
        if key in finals:
            continue
        r = rows[key]
        secs = [v[2] for v in vs]
        assert r["visits"] == len(secs)
        for p, name in ((0.5, "median_h"), (0.9, "p90_h")):
            exact = _nearest_rank(secs, p) / 3600
            assert r[name] == pytest.approx(exact, rel=0.026, abs=0.01), (key, name)
        assert r["mean_h"] == pytest.approx(sum(secs) / len(secs) / 3600, abs=0.01)
        sd = reg.get(key[0]).stage(key[1])
        if sd is not None and sd.sla and not sd.waits_on_customer:
            over = sum(1 for e, left, _ in vs
                       if due_at(datetime.fromtimestamp(e, UTC), sd.sla.hours, sd.sla.business_hours).timestamp() < left)
            assert r["with_sla"] == len(vs) and r["breached"] == over, key
            total_with += len(vs)
            total_breached += over
    assert total_breached > 0  # the demo has late stages: the check is not vacuous
    assert d["sla"]["period_with_sla"] == total_with and d["sla"]["period_breached"] == total_breached
    assert d["sla"]["open_with_sla"] == open_with_sla and d["sla"]["breached_now"] == (breached_now or 0)
    assert {(r["case_type"], r["stage"]): r["open"] for r in d["backlog_by_stage"]} == open_by_stage
    assert sum(r["with_sla"] for r in d["breach_trend"]) == total_with
    assert d["bottlenecks"] and d["longest_waiting"]


def test_case_type_filter_and_period(demo: None) -> None:
    with read_session() as s:
        all_ = service.dashboard(s, days=400)
        contracts = service.dashboard(s, days=400, case_type="contract")
        week = service.dashboard(s, days=7)
    assert {r["case_type"] for r in contracts["cycle_time"]} == {"contract"}
    assert sum(r["visits"] for r in week["cycle_time"]) < sum(r["visits"] for r in all_["cycle_time"])


def test_dashboard_page_csv_and_permissions(demo: None, client, api_key) -> None:  # type: ignore[no-untyped-def]
    lead = {"X-API-Key": api_key("lead")}
    r = client.get("/dashboard?days=90", headers=lead)
    assert r.status_code == 200, r.text
    html = r.text
    for heading in ("Backlog", "Cycle time per stage", "Bottlenecks", "SLA", "Exceptions", "AI decisions"):
        assert heading in html
    assert "<script>" not in html and "cdn" not in html.lower()
    imgs = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(imgs) == 3
    svg = base64.b64decode(imgs[0]).decode()
    assert svg.lstrip().startswith("<svg") and "<script" not in svg
    assert re.findall(r"https?://[^\"]+", svg) == ["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"]
    r = client.get("/dashboard/export.csv?table=cycle_time&days=90&type=complaint", headers=lead)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {"case_type", "stage", "median_h", "p90_h"} <= set(rows[0])
    assert {x["case_type"] for x in rows} == {"complaint"}
    for table in service.TABLES:
        assert client.get(f"/dashboard/export.csv?table={table}", headers=lead).status_code == 200
    assert client.get("/dashboard/export.csv?table=nope", headers=lead).status_code == 404
    assert client.get("/dashboard?days=3", headers=lead).status_code == 422
    assert client.get("/dashboard", headers={"X-API-Key": api_key("agent")}).status_code == 403
    assert client.get("/api/dashboard").status_code == 401
    j = client.get("/api/dashboard?days=30", headers=lead).json()
    assert "cycle_time" in j and "sla" in j


def test_prometheus_metrics(demo: None, client, api_key) -> None:  # type: ignore[no-untyped-def]
    with read_session() as s:
        n_complaints = s.execute(text("SELECT count(*) FROM cases WHERE case_type = 'complaint'")).scalar_one()
        transitions = s.execute(text("SELECT count(*) FROM stage_history")).scalar_one() - s.execute(
            text("SELECT count(*) FROM cases")).scalar_one()
    r = client.get("/metrics", headers={"Authorization": f"Bearer {api_key('admin')}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert f'casemgr_cases_created_total{{case_type="complaint"}} {float(n_complaints)}' in body
    got = sum(float(m) for m in re.findall(r"^casemgr_transitions_total\{[^}]*\} (\S+)$", body, re.M))
    assert got == transitions
    assert "casemgr_sla_breaches_total 0.0" in body
    assert re.search(r'^casemgr_queue_depth\{queue="complaints-triage"\} \d', body, re.M)
    assert "# TYPE casemgr_ai_call_latency_seconds histogram" in body
    assert client.get("/metrics", headers={"X-API-Key": api_key("agent")}).status_code == 403


def test_worker_refresh_job_updates_the_snapshot(demo: None) -> None:
    from casemgr.jobs import service as jobs
    from casemgr.metrics.models import MetricSnapshot
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    with read_session() as s:
        before = s.get(MetricSnapshot, service.LIVE).computed_at
        n_cases = s.execute(text("SELECT count(*) FROM cases")).scalar_one()
    with write_session() as s:
        jobs.enqueue(s, "metrics.refresh", {"full": True})
    assert Worker(schedule=False).run(once=True)["done"] == 1
    with read_session() as s:
        snap = s.get(MetricSnapshot, service.LIVE)
        assert snap.computed_at > before and snap.data["totals"]["cases"] == n_cases
        assert s.get(MetricSnapshot, "view:30:*") is not None


def test_ai_rates_and_exception_volume() -> None:
    from casemgr.cases import service as cases
    from casemgr.cases.models import Case
    from casemgr.cases.schemas import CaseCreate
    from casemgr.governance.models import AIDecision
    from casemgr.intake.models import QuarantinedMessage

    with write_session() as s:
        ids = [cases.create_case(s, CaseCreate(case_type="complaint", subject=f"c{i}"), actor="user:t").id
               for i in range(4)]
        c0, c1 = s.get(Case, ids[0]), s.get(Case, ids[1])
        c0.ai_status = "unavailable"
        c1.rules_result = {"default_used": True, "queue": None}
        s.get(Case, ids[2]).rules_result = {"default_used": False}
        s.add(QuarantinedMessage(channel="email", reason="bad mime"))
        s.add(QuarantinedMessage(channel="email", reason="too big", status="discarded"))

        def dec(kind: str, outcome: str, review: str) -> None:
            s.add(AIDecision(case_id=ids[0], kind=kind, outcome=outcome, review_status=review, policy_version="p1"))

        # classify: 3 applied (1 sampled and overridden, 1 sampled and accepted, 1 not reviewed), 1 suggested+accepted
        dec("classify", "applied", "overridden")
        dec("classify", "applied", "accepted")
        dec("classify", "applied", "none")
        dec("classify", "suggested", "accepted")
        # set_priority: 2 suggestions, one accepted, one rejected, one still pending
        dec("set_priority", "suggested", "accepted")
        dec("set_priority", "suggested", "rejected")
        dec("set_priority", "suggested", "pending")
        service.refresh(s)
    with read_session() as s:
        d = service.dashboard(s, days=30)
    ai = {r["kind"]: r for r in d["ai"]}
    assert ai["classify"]["auto_apply_rate"] == 0.75
    assert ai["classify"]["acceptance_rate"] == 1.0
    assert ai["classify"]["override_rate"] == round(1 / 3, 4)
    assert ai["set_priority"]["auto_apply_rate"] == 0.0
    assert ai["set_priority"]["acceptance_rate"] == 0.5
    assert ai["set_priority"]["override_rate"] == 0.0
    ex = d["exceptions"]
    assert ex["quarantine_held"] == 1 and ex["quarantine_total"] == 2 and ex["ai_unavailable"] == 1
    with read_session() as s:
        fallbacks = sum(1 for c in s.execute(select(Case)).scalars() if (c.rules_result or {}).get("default_used") is True)
    assert ex["rules_fallbacks"] == fallbacks >= 1
