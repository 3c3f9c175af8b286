"""Case types are data: a third type needs only YAML; an invalid file is refused with file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casemgr.casetypes.registry import load_registry
from casemgr.policyfile import PolicyFileError

POLICIES = Path(__file__).resolve().parents[2] / "policies"

INVOICE = """
  - name: expense
    label: Expense claim
    reference_prefix: EXP
    default_queue: default
    fields:
      - {name: vendor, type: string, required: true}
      - {name: amount, type: number, required: true}
    stages:
      - name: received
        owner_role: agent
        sla: {hours: 8}
        tasks:
          - {name: Match PO, role: agent, sop: sop/complaint-triage.md}
        transitions: [approved, rejected]
      - name: approved
        final: true
      - name: rejected
        final: true
"""


@pytest.fixture
def policies_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dst = tmp_path / "policies"
    shutil.copytree(POLICIES, dst)
    monkeypatch.setenv("CASEMGR_POLICIES_DIR", str(dst))
    from casemgr.runtime import rebuild

    rebuild()
    return dst


def test_third_case_type_needs_only_yaml(policies_copy: Path, api_key) -> None:
    path = policies_copy / "case-types.yaml"
    path.write_text(path.read_text() + INVOICE)
    from fastapi.testclient import TestClient

    from casemgr.web.app import create_app

    with TestClient(create_app(), headers={"X-API-Key": api_key("agent")}) as c:
        r = c.post("/api/cases", json={"case_type": "expense", "subject": "INV 42", "fields": {"vendor": "ACME"}})
        assert r.status_code == 422 and "missing required field(s): amount" in r.json()["detail"]
        r = c.post("/api/cases", json={"case_type": "expense", "subject": "INV 42",
                                       "fields": {"vendor": "ACME", "amount": 120.5}})
        assert r.status_code == 201, r.text
        case = r.json()
        assert case["reference"].startswith("EXP-") and case["stage"] == "received"
        r = c.post(f"/api/cases/{case['id']}/transitions", json={"to_stage": "approved", "version": case["version"]})
        assert r.status_code == 200 and r.json()["status"] == "closed"


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda t: t.replace("transitions: [triage, closed]", "transitions: [triage, limbo]"), "unknown stage 'limbo'"),
        (lambda t: t.replace("owner_role: legal\n", "owner_role: wizard\n", 1), "unknown role 'wizard'"),
        (lambda t: t.replace("sop/complaint-triage.md", "sop/missing.md"), "SOP file not found"),
        (lambda t: t.replace("sla: {hours: 4}", "sla: {hours: -4}"), "greater than 0"),
        (lambda t: t.replace("  - name: contract\n", "  - name: contract\n    colour: blue\n"), "Extra inputs"),
        (lambda t: t.replace("reference_prefix: CMP", "reference_prefix: [CMP"), "YAML syntax error"),
    ],
)
def test_invalid_case_types_file_is_refused_with_file_and_line(policies_copy: Path, mutate, expect) -> None:
    path = policies_copy / "case-types.yaml"
    original = path.read_text()
    path.write_text(mutate(original))
    with pytest.raises(PolicyFileError) as exc:
        load_registry(policies_copy)
    message = str(exc.value)
    assert expect in message
    assert f"{path}:" in message
    line = int(message.split(f"{path}:")[1].split(":")[0])
    assert line > 1


def test_cli_serve_refuses_invalid_file(policies_copy: Path) -> None:
    from typer.testing import CliRunner

    from casemgr.cli import app

    path = policies_copy / "case-types.yaml"
    path.write_text(path.read_text().replace("transitions: [drafting, expired]", "transitions: [drafting, nowhere]"))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "case-types.yaml:" in result.output and "nowhere" in result.output
