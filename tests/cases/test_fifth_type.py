"""Issue 22 acceptance: a fifth case type (a warranty claim) added to a COPY of policies/ through
CASEMGR_POLICIES_DIR alone goes through API, form and email intake, rules routing, SLA, the dashboard and the
XES export with no code change."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from casemgr.cases.models import Case, Task
from casemgr.db import read_session
from casemgr.runtime import rebuild

POLICIES = Path(__file__).resolve().parents[2] / "policies"

WARRANTY = """
  - name: warranty
    label: Warranty claim
    reference_prefix: WAR
    default_queue: default
    slug: warranty-claim
    form_title: Claim under warranty
    intake_addresses: ["warranty@"]
    fields:
      - {name: product, type: enum, choices: [kettle, toaster, blender]}
      - {name: serial_number, type: string, max_length: 40}
      - {name: purchase_date, type: date}
      - {name: amount, type: number, label: Purchase price}
    stages:
      - name: claim
        owner_role: agent
        sla: {hours: 6}
        tasks:
          - {name: Check proof of purchase, role: agent, sop: sop/warranty-check.md}
        transitions: [repair, rejected]
      - name: repair
        owner_role: agent
        sla: {hours: 40}
        transitions: [done]
      - name: done
        final: true
      - name: rejected
        final: true
"""

RULES = """description: Warranty claims for expensive products go to the warranty desk
rules:
  - name: warranty-desk
    salience: 10
    when:
      all:
        - type: warranty
        - amount: {gt: 100}
    then:
      queue: warranty-desk
"""


@pytest.fixture
def policies_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dst = tmp_path / "policies"
    shutil.copytree(POLICIES, dst)
    types = dst / "case-types.yaml"
    types.write_text(types.read_text() + WARRANTY)
    org = dst / "org.yaml"
    org.write_text(org.read_text() + "  - {name: warranty-desk, owner_role: agent}\n")
    (dst / "sop" / "warranty-check.md").write_text("# Check proof of purchase\n\n1. Find the receipt.\n")
    (dst / "rules" / "warranty.yaml").write_text(RULES)
    monkeypatch.setenv("CASEMGR_POLICIES_DIR", str(dst))
    rebuild()  # case types, SOPs and rules load from the copy (its rules/ has the new file)
    return dst


def _case(ref: str) -> Case:
    with read_session() as s:
        return s.execute(select(Case).where(Case.reference == ref)).scalar_one()


def test_fifth_type_goes_through_every_channel_with_no_code(policies_copy: Path, api_key: Any) -> None:
    from casemgr.web.app import create_app

    with TestClient(create_app()) as c:
        # API intake: no Literal refuses the new type; its fields are checked against the YAML.
        key = {"X-API-Key": api_key("agent")}
        r = c.post("/api/intake", headers=key, json={"case_type": "warranty", "subject": "Kettle leaks",
                                                      "body": "It leaks.", "fields": {"product": "fridge"}})
        assert r.status_code == 422, r.text
        r = c.post("/api/intake", headers=key, json={
            "case_type": "warranty", "subject": "Kettle leaks", "body": "The kettle leaks from the base.",
            "sender": {"name": "Ann", "email": "ann@example.org"},
            "fields": {"product": "kettle", "amount": 150.0}})
        assert r.status_code == 201, r.text
        api_case = _case(r.json()["reference"])
        assert api_case.reference.startswith("WAR-") and api_case.stage == "claim"
        assert api_case.queue == "warranty-desk"  # the rule file added to the copy routed it
        assert api_case.sla_due_at is not None  # the stage's SLA from the YAML
        r = c.post("/api/intake", headers=key, json={"case_type": "nonsense", "subject": "x"})
        assert r.status_code == 422 and "warranty" in r.text  # names the known types
        # The model view draws it from the YAML too: stages, transitions, SLA and tasks (issue 22).
        svg = c.get("/api/casetypes/warranty/model.svg", headers=key)
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        for part in ('data-stage="claim"', 'data-stage="rejected"', 'data-from="claim" data-to="repair"',
                     'data-hours="6"', "Check proof of purchase"):
            assert part in svg.text, part

        # Form intake at /submit/<slug>, fields built from the YAML.
        page = c.get("/submit/warranty-claim")
        assert page.status_code == 200 and "Claim under warranty" in page.text
        assert 'name="serial_number"' in page.text and 'name="purchase_date"' in page.text
        assert '<option value="blender"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"name": "Bo Chen", "email": "bo@example.org", "subject": "Toaster burns",
                "description": "The toaster burns every slice.", "csrf_token": token.group(1),
                "product": "toaster", "purchase_date": "not a date", "amount": "40"}
        r = c.post("/submit/warranty-claim", data=form)
        assert r.status_code == 422 and "as a date" in r.text
        r = c.post("/submit/warranty-claim", data={**form, "purchase_date": "2026-01-15"})
        assert r.status_code == 200, r.text
        ref = re.search(r'id="case-reference">([^<]+)<', r.text)
        assert ref and ref.group(1).startswith("WAR-")
        form_case = _case(ref.group(1))
        assert form_case.fields["purchase_date"] == "2026-01-15" and form_case.fields["product"] == "toaster"
        assert form_case.queue == "default"  # 40 is under the rule's threshold
        assert c.get("/submit/warranty").status_code == 404  # the slug, not the name, when a slug is set

    # Email intake: a mail to the type's intake address opens a warranty case.
    from casemgr.intake import service

    raw = (b"From: Cy <cy@example.org>\nTo: warranty@example.com\nSubject: Blender broke\n"
           b"Message-ID: <w1@example.org>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n\nIt stopped.\n")
    res = service.ingest_raw(raw, channel="email", envelope_to=["warranty@example.com"])
    assert res.status == "case" and res.reference and res.reference.startswith("WAR-")
    mail_case = _case(res.reference)
    assert mail_case.case_type == "warranty" and mail_case.stage == "claim"

    with read_session() as s:
        tasks = s.execute(select(Task).where(Task.case_id == mail_case.id)).scalars().all()
        assert any(t.name == "Check proof of purchase" for t in tasks)
        from casemgr.metrics import export
        from casemgr.metrics import service as metrics

        d = metrics.dashboard(s, days=30, case_type="warranty", cached=False)
        buf = io.StringIO()
        export.write_xes(s, buf)
    assert "warranty" in repr(d)
    xes = buf.getvalue()
    assert xes.count('<string key="case:type" value="warranty"/>') == 3
