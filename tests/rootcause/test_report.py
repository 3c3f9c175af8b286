"""Root-cause figures (issue 22) against hand-counted closed complaints: causes, recurring causes by product /
issue / queue, weekly trend, top movers; the dashboard section, the JSON API, the CSV export and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from casemgr.clock import now
from casemgr.db import read_session
from casemgr.rootcause.report import report

from .helpers import closed_complaint


@pytest.fixture
def closed() -> dict[str, list[int]]:
    at = now()
    cur, prev = at - timedelta(days=1), at - timedelta(days=10)
    ids = {
        "current": [closed_complaint("billing_error", cur, product="credit_card", issue="dispute_charge")
                    for _ in range(3)]
        + [closed_complaint("system_error", cur - timedelta(hours=h), product="retail_banking") for h in (1, 2)],
        "previous": [closed_complaint("billing_error", prev, product="credit_card", issue="dispute_charge")]
        + [closed_complaint("process_delay", prev, product="mortgages_and_loans", issue="hardship_modification")
           for _ in range(2)],
        # Outside both periods: counted in neither.
        "old": [closed_complaint("billing_error", at - timedelta(days=40), product="credit_card")],
    }
    return ids


def test_causes_recurring_trend_and_top_movers(closed: dict[str, list[int]]) -> None:
    with read_session() as s:
        r = report(s, days=7)
    assert r["case_types"] == ["complaint"] and (r["total"], r["previous_total"]) == (5, 3)
    causes = {c["code"]: (c["cases"], c["previous"], c["change"]) for c in r["causes"]}
    assert causes == {"billing_error": (3, 1, 2), "system_error": (2, 0, 2), "process_delay": (0, 2, -2)}
    assert r["causes"][0]["label"] == "Billing or fee error" and r["causes"][0]["share"] == 0.6
    assert [(p["product"], p["code"], p["cases"]) for p in r["by_product"]] == [
        ("credit_card", "billing_error", 3), ("retail_banking", "system_error", 2)]
    assert [(p["issue"], p["code"], p["cases"]) for p in r["by_issue"]] == [
        ("dispute_charge", "billing_error", 3), ("(none)", "system_error", 2)]
    assert sum(w["cases"] for w in r["trend"]) == 5
    assert sum(w["by_code"].get("system_error", 0) for w in r["trend"]) == 2
    movers = [(m["code"], m["product"], m["previous"], m["cases"], m["change"]) for m in r["top_movers"]]
    assert movers == [("billing_error", "credit_card", 1, 3, 2), ("system_error", "retail_banking", 0, 2, 2),
                      ("process_delay", "mortgages_and_loans", 2, 0, -2)]
    assert r["top_movers"][0]["change_pct"] == 200.0 and r["top_movers"][1]["change_pct"] is None
    with read_session() as s:
        month = report(s, days=30)  # the 40-day-old case counts in the 30 days before
    assert (month["total"], month["previous_total"]) == (8, 1)


def test_dashboard_api_and_csv(closed: dict[str, list[int]], client, api_key) -> None:  # type: ignore[no-untyped-def]
    lead = {"X-API-Key": api_key("lead")}
    page = client.get("/dashboard?days=7", headers=lead)
    assert page.status_code == 200
    assert 'id="root-causes"' in page.text and '<strong id="rc-total">5</strong>' in page.text
    assert 'data-cause="billing_error"' in page.text and "Top movers" in page.text
    assert 'id="root-causes"' not in client.get("/dashboard?type=contract", headers=lead).text  # no codes there
    api = client.get("/api/root-causes?days=7", headers=lead).json()
    assert api["total"] == 5 and api["top_movers"][0]["code"] == "billing_error"
    assert client.get("/api/root-causes?days=5", headers=lead).status_code == 422
    r = client.get("/api/root-causes?type=warranty", headers=lead)
    assert r.status_code == 422 and "unknown case type 'warranty'" in r.json()["detail"]
    assert client.get("/api/root-causes", headers={"X-API-Key": api_key("agent")}).status_code == 403
    r = client.get("/dashboard/root-causes.csv?days=7", headers=lead)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sum(int(x["cases"]) for x in rows) == 5 and sum(int(x["previous_cases"]) for x in rows) == 3
    billing = next(x for x in rows if x["resolution_code"] == "billing_error")
    assert (billing["product"], billing["issue"], billing["cases"], billing["previous_cases"], billing["change"]) == (
        "credit_card", "dispute_charge", "3", "1", "2")
    assert billing["resolution"] == "Billing or fee error" and billing["queue"]


def test_cli_export(closed: dict[str, list[int]], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from casemgr.cli import app

    out = tmp_path / "rc.csv"
    r = CliRunner().invoke(app, ["export", "root-causes", "--days", "7", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert sum(int(x["cases"]) for x in csv.DictReader(out.open(encoding="utf-8"))) == 5
    r = CliRunner().invoke(app, ["export", "root-causes", "--days", "7", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["total"] == 5
    assert CliRunner().invoke(app, ["export", "root-causes", "--days", "8"]).exit_code == 2
