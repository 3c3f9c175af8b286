"""Resolution codes (issue 22): required when a complaint closes, on every path that closes one (API, case page,
bulk, macros), with a clear 422 that lists the choices; types without codes close as before."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import read_session
from casemgr.macros import loader
from casemgr.policyfile import PolicyFileError
from tests.web._helpers import HTML
from tests.workspace.conftest import make_cases, versions


def _to_triage(client, cid: int) -> int:  # type: ignore[no-untyped-def]
    r = client.post(f"/api/cases/{cid}/transitions", json={"to_stage": "triage", "version": versions([cid])[0]["version"]})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_api_close_needs_a_known_code_and_records_it(agent_client) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1)[0]
    v = _to_triage(agent_client, cid)
    url = f"/api/cases/{cid}/transitions"
    r = agent_client.post(url, json={"to_stage": "closed", "version": v})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_failed" and "closing a complaint needs a resolution code" in body["detail"]
    assert "billing_error" in body["detail"] and "withdrawn" in body["detail"]
    r = agent_client.post(url, json={"to_stage": "closed", "version": v, "resolution_code": "lost_in_space"})
    assert r.status_code == 422 and "unknown resolution code 'lost_in_space'" in r.json()["detail"]
    r = agent_client.post(url, json={"to_stage": "investigation", "version": v, "resolution_code": "billing_error"})
    assert r.status_code == 422 and "not a closing stage" in r.json()["detail"]
    with read_session() as s:
        assert s.get(Case, cid).version == v  # type: ignore[union-attr]  # nothing was claimed by the refusals
    r = agent_client.post(url, json={"to_stage": "closed", "version": v, "resolution_code": "billing_error"})
    assert r.status_code == 200, r.text
    assert r.json()["resolution_code"] == "billing_error" and r.json()["status"] == "closed"
    with read_session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.case_id == cid, AuditEvent.action == "case.transitioned")
                       .order_by(AuditEvent.seq.desc())).scalars().first()
    assert ev is not None and ev.after["resolution_code"] == "billing_error" and ev.after["stage"] == "closed"
    # Reopened and closed again: the confirmed code stays unless the agent gives another one.
    r = agent_client.post(url, json={"to_stage": "triage", "version": r.json()["version"]})
    r = agent_client.post(url, json={"to_stage": "closed", "version": r.json()["version"]})
    assert r.status_code == 200 and r.json()["resolution_code"] == "billing_error"


def test_types_without_codes_close_as_before_and_refuse_a_code(agent_client) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1, case_type="contract")[0]
    url = f"/api/cases/{cid}/transitions"
    v = versions([cid])[0]["version"]
    r = agent_client.post(url, json={"to_stage": "expired", "version": v, "resolution_code": "billing_error"})
    assert r.status_code == 422 and "has no resolution codes" in r.json()["detail"]
    r = agent_client.post(url, json={"to_stage": "expired", "version": v})
    assert r.status_code == 200 and r.json()["resolution_code"] is None


def test_case_page_offers_the_codes_and_explains_a_refusal(web_client, agent_client) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1)[0]
    c, csrf = web_client("agent")
    # Investigation has no closing move: no codes offered there.
    moved = make_cases(1)[0]
    v = _to_triage(agent_client, moved)
    agent_client.post(f"/api/cases/{moved}/transitions", json={"to_stage": "investigation", "version": v})
    assert 'name="resolution_code"' not in c.get(f"/cases/{moved}", headers=HTML).text
    page = c.get(f"/cases/{cid}", headers=HTML).text  # in intake: closed is an allowed move
    assert 'name="resolution_code"' in page and ">Billing or fee error<" in page
    v = versions([cid])[0]["version"]
    r = c.post(f"/cases/{cid}/transition", data={"csrf_token": csrf, "version": v, "to_stage": "closed"}, headers=HTML)
    assert r.status_code == 422 and "needs a resolution code" in r.text
    r = c.post(f"/cases/{cid}/transition", data={"csrf_token": csrf, "version": v, "to_stage": "closed",
                                                 "resolution_code": "process_delay"}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Stage changed." in r.text
    assert re.search(r'id="case-resolution">Delay in our process<', r.text)
    with read_session() as s:
        assert s.get(Case, cid).resolution_code == "process_delay"  # type: ignore[union-attr]


def test_bulk_close_takes_the_code_for_types_that_have_codes(person) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    complaints, contract = make_cases(2), make_cases(1, case_type="contract")
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {"reason": "sorted"},
                                                   "cases": versions(complaints + contract)})
    assert [x["result"] for x in r.json()["results"]] == ["invalid", "invalid", "ok"]
    assert "needs a resolution code" in r.json()["results"][0]["message"]
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {"reason": "sorted",
                                                                                 "resolution_code": "nonsense"},
                                                   "cases": versions(complaints)})
    assert [x["result"] for x in r.json()["results"]] == ["invalid", "invalid"]
    assert "unknown resolution code 'nonsense'" in r.json()["results"][0]["message"]
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {"reason": "sorted",
                                                                                 "resolution_code": "third_party"},
                                                   "cases": versions(complaints)})
    assert [x["result"] for x in r.json()["results"]] == ["ok", "ok"]
    with read_session() as s:
        assert {s.get(Case, i).resolution_code for i in complaints} == {"third_party"}  # type: ignore[union-attr]


CLOSING_MACRO = """title: Close as withdrawn
case_types: [complaint]
stages: [intake]
reply: |
  We have closed your complaint as you asked.
transition: closed
"""


@pytest.fixture
def macro_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "macros"
    shutil.copytree(loader.macros_dir(), d)
    monkeypatch.setattr(loader, "macros_dir", lambda: d)
    return d


def test_a_closing_macro_must_name_a_code_and_applies_it(macro_dir: Path, person) -> None:  # type: ignore[no-untyped-def]
    (macro_dir / "complaint-withdrawn.yaml").write_text(CLOSING_MACRO)
    with pytest.raises(PolicyFileError) as err:
        loader.load_all(macro_dir)
    assert f"{macro_dir / 'complaint-withdrawn.yaml'}:6: closing a complaint needs a resolution code" in str(err.value)
    (macro_dir / "complaint-withdrawn.yaml").write_text(CLOSING_MACRO + "resolution_code: withdrwan\n")
    with pytest.raises(PolicyFileError) as err:
        loader.load_all(macro_dir)
    assert f"{macro_dir / 'complaint-withdrawn.yaml'}:7: unknown resolution code 'withdrwan'" in str(err.value)
    (macro_dir / "complaint-withdrawn.yaml").write_text(CLOSING_MACRO + "resolution_code: withdrawn\n")
    assert "complaint-withdrawn" in loader.load_all(macro_dir)
    agent = person("ada", "agent")
    cid = make_cases(1)[0]
    r = agent.client.post(f"/api/cases/{cid}/macros/complaint-withdrawn",
                          json={"version": versions([cid])[0]["version"]})
    assert r.status_code == 200, r.text
    with read_session() as s:
        case = s.get(Case, cid)
        assert case.stage == "closed" and case.resolution_code == "withdrawn"  # type: ignore[union-attr]
        ev = s.execute(select(AuditEvent).where(AuditEvent.case_id == cid, AuditEvent.action == "macro.applied")
                       ).scalars().one()
    assert ev.after["resolution_code"] == "withdrawn"
