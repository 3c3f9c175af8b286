"""Backup and restore into an empty database; the restored audit trail verifies."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from casemgr.cli import app as cli
from casemgr.config import get_settings
from casemgr.runtime import rebuild


def _counts(url: str) -> dict[str, int]:
    eng = create_engine(url)
    with eng.connect() as conn:
        out = {t: conn.execute(text(f"select count(*) from {t}")).scalar_one() for t in ("cases", "audit_events", "tasks")}
    eng.dispose()
    return out


def test_backup_then_restore_into_empty_database_and_verify(agent_client, tmp_path, monkeypatch) -> None:
    for i in range(5):
        case = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": f"b{i}"}).json()
        agent_client.post(f"/api/cases/{case['id']}/transitions", json={"to_stage": "triage", "version": case["version"]})
    source = _counts(get_settings().effective_database_url)
    runner = CliRunner()
    dump = tmp_path / "backup.db"
    r = runner.invoke(cli, ["backup", str(dump)])
    assert r.exit_code == 0, r.output
    assert dump.stat().st_size > 0

    # Point at an empty database and restore there.
    pg = os.environ.get("CASEMGR_TEST_DATABASE_URL")
    if pg:
        other = pg.rsplit("/", 1)[0] + "/casemgr_test2"
        eng = create_engine("postgresql+psycopg://" + other.split("://", 1)[1])
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
        monkeypatch.setenv("CASEMGR_DATABASE_URL", other)
    else:
        monkeypatch.setenv("CASEMGR_DATA_DIR", str(tmp_path / "empty"))
    rebuild()
    r = runner.invoke(cli, ["restore", str(dump)])
    assert r.exit_code == 0, r.output
    assert _counts(get_settings().effective_database_url) == source
    r = runner.invoke(cli, ["audit", "verify"])
    assert r.exit_code == 0, r.output
    assert f"{source['audit_events']} events" in r.output


def test_restore_refuses_garbage(tmp_path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup")
    r = CliRunner().invoke(cli, ["restore", str(junk)])
    assert r.exit_code == 1 and "restore failed" in r.output
    r = CliRunner().invoke(cli, ["restore", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "not found" in r.output
