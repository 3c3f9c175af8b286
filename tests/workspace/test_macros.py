"""Macros: shipped files load, bad files fail with file:line, replies render sandboxed, applying is one
audited change with the case version and the agent's edited reply goes out."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, Task
from casemgr.db import read_session
from casemgr.intake.models import Message
from casemgr.macros import loader
from casemgr.policyfile import PolicyFileError
from tests.web._helpers import HTML

from .conftest import make_cases, versions


def test_shipped_macros_load() -> None:
    macros = loader.load_all()
    assert len(macros) >= 8
    types = [t for m in macros.values() for t in m.case_types]
    assert types.count("complaint") >= 4 and types.count("contract") >= 4


def test_bad_macro_files_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "title: Broken\ncase_types: [complaint]\nreply: |\n  Dear {{ customer_name }},\n  {{ case.subject \n"
        "transition: nowhere\n")
    (tmp_path / "typo.yaml").write_text(
        "title: Typo\ncase_types: [complaint, warranty]\nreply: |\n  Hello {{ custmer_name }}\n")
    (tmp_path / "extra.yaml").write_text("title: X\ncase_types: [complaint]\nsend_now: true\n")
    with pytest.raises(PolicyFileError) as err:
        loader.load_all(tmp_path)
    text = str(err.value)
    assert f"{tmp_path / 'broken.yaml'}:5: template syntax error" in text
    assert f"{tmp_path / 'typo.yaml'}:2: unknown case type(s) warranty" in text
    assert f"{tmp_path / 'extra.yaml'}:3: send_now: Extra inputs are not permitted" in text
    (tmp_path / "typo.yaml").write_text("title: Typo\ncase_types: [complaint]\nreply: |\n  Hi\n  {{ custmer_name }}\n")
    (tmp_path / "broken.yaml").unlink()
    (tmp_path / "extra.yaml").unlink()
    with pytest.raises(PolicyFileError) as err:
        loader.load_all(tmp_path)
    assert f"{tmp_path / 'typo.yaml'}:5: unknown template variable(s) custmer_name" in str(err.value)


def test_reply_rendering_is_sandboxed() -> None:
    from casemgr.errors import ValidationFailed
    from casemgr.macros import render

    assert render.render("Hi {{ customer_name }}", {"customer_name": "Kim"}) == "Hi Kim\n"
    with pytest.raises(ValidationFailed):
        render.render("{{ customer_name.__class__.__mro__[1].__subclasses__() }}", {"customer_name": "Kim"})


def test_apply_a_macro_as_one_change_with_the_edited_reply(person) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    cid = make_cases(1, email="kim@example.com")[0]
    listed = agent.client.get(f"/api/macros?case_id={cid}").json()
    assert "complaint-acknowledge" in {m["name"] for m in listed}
    assert all("complaint" in m["case_types"] for m in listed)
    assert len(agent.client.get("/api/macros").json()) >= 8
    v = versions([cid])[0]["version"]
    r = agent.client.post(f"/api/cases/{cid}/macros/complaint-acknowledge", json={"version": v, "preview": True})
    assert r.status_code == 200 and r.json()["applied"] is False
    assert r.json()["reply"].startswith("Dear Pat Doe,") and "under reference\nCMP-" in r.json()["reply"]
    assert versions([cid])[0]["version"] == v  # a preview changes nothing
    r = agent.client.post(f"/api/cases/{cid}/macros/complaint-acknowledge", json={"version": v - 1 or 99})
    assert r.status_code == 409
    edited = r"Dear Pat, thanks for writing. We'll be in touch."
    r = agent.client.post(f"/api/cases/{cid}/macros/complaint-acknowledge", json={"version": v, "reply": edited})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["applied"] and out["transition"] == "triage" and out["message_id"]
    with read_session() as s:
        case = s.get(Case, cid)
        assert case.stage == "triage" and case.version == out["version"]  # type: ignore[union-attr]
        assert s.execute(select(Task).where(Task.case_id == cid, Task.name == "Confirm category and amount in dispute")
                         ).scalars().one()
        msg = s.get(Message, out["message_id"])
        assert msg.body_text.strip() == edited and msg.direction == "outbound"  # type: ignore[union-attr]
        events = s.execute(select(AuditEvent).where(AuditEvent.case_id == cid, AuditEvent.action == "macro.applied")
                           ).scalars().all()
        assert len(events) == 1 and events[0].after["macro"] == "complaint-acknowledge"
        assert events[0].after["stage"] == "triage"
    # Not a macro for this stage any more; unknown macros are 404.
    r = agent.client.post(f"/api/cases/{cid}/macros/complaint-acknowledge", json={"version": out["version"]})
    assert r.status_code == 422 and "stages intake" in r.json()["detail"]
    assert agent.client.post(f"/api/cases/{cid}/macros/nope", json={"version": 1}).status_code == 404


def test_macro_from_the_case_page(web_client) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1)[0]
    c, csrf = web_client("agent")
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert 'id="macro-select"' in page and "Acknowledge the complaint" in page
    frag = c.get(f"/cases/{cid}/macro-preview?macro=complaint-escalate-to-lead",
                 headers={"HX-Request": "true"}).text
    assert 'id="macro-reply"' in frag and "senior colleague" in frag and "sets priority: urgent" in frag
    r = c.post(f"/cases/{cid}/macros/complaint-escalate-to-lead",
               data={"csrf_token": csrf, "version": versions([cid])[0]["version"], "body": "We escalated it."},
               headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Macro applied." in r.text and "We escalated it." in r.text
    with read_session() as s:
        case = s.get(Case, cid)
        assert case.priority == "urgent" and case.queue == "escalations"  # type: ignore[union-attr]


def test_cli_check_names_file_and_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from casemgr.cli import app
    from casemgr.runtime import rebuild

    assert CliRunner().invoke(app, ["macros", "check"]).exit_code == 0
    bad = tmp_path / "macros"
    bad.mkdir()
    (bad / "x.yaml").write_text("title: X\ncase_types: [complaint]\ntasks:\n  - {name: Call, role: wizard}\n")
    monkeypatch.setattr(loader, "macros_dir", lambda: bad)
    r = CliRunner().invoke(app, ["macros", "check"])
    assert r.exit_code == 2 and f"{bad / 'x.yaml'}:4: unknown role 'wizard'" in r.output
    rebuild()
