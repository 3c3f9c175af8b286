"""The audit trail is hash-chained: verify passes on an intact log and names the first bad event after tampering."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from casemgr.cli import app as cli
from casemgr.db import get_engine


@pytest.fixture
def some_history(agent_client):  # type: ignore[no-untyped-def]
    for i in range(4):
        case = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": f"c{i}"}).json()
        agent_client.post(f"/api/cases/{case['id']}/transitions", json={"to_stage": "triage", "version": case["version"]})
    return agent_client


def _verify() -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["audit", "verify", "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def _sql(stmt: str) -> None:
    with get_engine(write=True).begin() as conn:
        conn.execute(text(stmt))


def test_intact_log_verifies(some_history) -> None:
    code, out = _verify()
    assert code == 0 and out["ok"] and out["checked"] >= 12


def test_update_is_detected(some_history) -> None:
    _sql("UPDATE audit_events SET actor = 'user:mallory' WHERE seq = 5")
    code, out = _verify()
    assert code == 1 and out["first_bad_seq"] == 5 and "altered" in out["reason"]


def test_delete_is_detected(some_history) -> None:
    _sql("DELETE FROM audit_events WHERE seq = 7")
    code, out = _verify()
    assert code == 1 and out["first_bad_seq"] == 7


def test_delete_of_the_tail_is_detected(some_history) -> None:
    _sql("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    code, out = _verify()
    assert code == 1


def test_reorder_is_detected(some_history) -> None:
    # Swap two events' positions (content moves, seq stays): the chain links break at the first swapped one.
    _sql("UPDATE audit_events SET seq = -1 WHERE seq = 3")
    _sql("UPDATE audit_events SET seq = 3 WHERE seq = 4")
    _sql("UPDATE audit_events SET seq = 4 WHERE seq = -1")
    code, out = _verify()
    assert code == 1 and out["first_bad_seq"] == 3


def test_export_jsonl_and_csv(some_history, tmp_path) -> None:
    out = tmp_path / "a.jsonl"
    r = CliRunner().invoke(cli, ["audit", "export", "--format", "jsonl", "--out", str(out)])
    assert r.exit_code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["seq"] == 1 and all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, len(rows)))
    out_csv = tmp_path / "a.csv"
    r = CliRunner().invoke(cli, ["audit", "export", "--format", "csv", "--out", str(out_csv)])
    assert r.exit_code == 0 and out_csv.read_text().startswith("seq,ts,actor")
    assert CliRunner().invoke(cli, ["audit", "export", "--format", "xml"]).exit_code == 2


def test_first_events_on_an_empty_database_do_not_race(app, api_key) -> None:
    """Many first-ever writers at once: every one succeeds and the chain has no gap or fork."""
    import threading

    from fastapi.testclient import TestClient

    key = api_key("agent")
    with _sql_conn() as conn:  # start from an empty chain (the key's creation wrote events)
        conn.execute(text("DELETE FROM audit_events"))
        conn.execute(text("UPDATE audit_head SET seq = 0, hash = :h"), {"h": "0" * 64})
    codes: list[int] = []
    with TestClient(app, headers={"X-API-Key": key}) as c:
        def create(i: int) -> None:
            codes.append(c.post("/api/cases", json={"case_type": "complaint", "subject": f"first {i}"}).status_code)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [201] * 12
    code, out = _verify()
    assert code == 0 and out["ok"], out


def _sql_conn():  # type: ignore[no-untyped-def]
    return get_engine(write=True).begin()
