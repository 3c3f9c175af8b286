"""The shipped policy file is version 1: after the first publish, rollback returns to it (issue 21)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cli import app
from casemgr.db import read_session, write_session
from casemgr.documents.enums import BASELINE_AUTHOR
from casemgr.governance import lifecycle
from casemgr.governance.policy import active_policy, content_version

from .util import POLICY_FILE, policy_text

SHIPPED = POLICY_FILE.read_text(encoding="utf-8")
STRICT = policy_text(lambda d: d["review"].update(sample_rate=0.5))
GOV = {"governance"}


def test_first_publish_records_the_shipped_file_as_version_1_and_rollback_returns_to_it() -> None:
    shipped = content_version(SHIPPED)
    assert active_policy().version == shipped  # nothing published: the file is in force
    with write_session() as s:
        pub = lifecycle.publish(s, STRICT, actor="user:gov", roles=GOV, reason="sample half")
    with read_session() as s:
        vs = lifecycle.versions(s)
        assert [(v["version"], v["is_active"], v["author"]) for v in vs] == [
            (pub["version"], True, "user:gov"), (shipped, False, BASELINE_AUTHOR)]
        assert vs[1]["id"] < vs[0]["id"]  # the baseline is the oldest row: version 1
        assert "-  sample_rate: 0.1" in pub["diff"] and "+  sample_rate: 0.5" in pub["diff"]
        assert active_policy(s).version == pub["version"]
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
        assert actions[-2:] == ["ai-policy.baseline", "ai-policy.publish"]
    with write_session() as s:
        back = lifecycle.rollback(s, actor="user:gov2", roles=GOV, reason="back to what shipped")
        assert back["version"] == shipped and back["changed"]
    with read_session() as s:
        assert active_policy(s).version == shipped and active_policy(s).text == SHIPPED
        assert len(lifecycle.versions(s)) == 3  # the baseline is recorded once, not again on rollback


def test_publishing_the_shipped_file_first_makes_it_version_1_without_a_second_row() -> None:
    with write_session() as s:
        first = lifecycle.publish(s, SHIPPED, actor="user:gov", roles=GOV, reason="adopt as shipped")
        assert first["version"] == content_version(SHIPPED)
        assert [v["author"] for v in lifecycle.versions(s)] == ["user:gov"]


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_cli_rolls_back_to_the_shipped_version(tmp_path, make_user) -> None:  # type: ignore[no-untyped-def]
    gov, _ = make_user("governance")
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT)
    runner = CliRunner()
    r = runner.invoke(app, ["policy", "publish", str(strict), "--reason", "stricter", "--author", gov])
    assert r.exit_code == 0, r.output
    shipped = content_version(SHIPPED)
    r = runner.invoke(app, ["policy", "rollback", "--to", shipped[:8], "--reason", "undo", "--author", gov])
    assert r.exit_code == 0 and f"active version is now {shipped}" in r.output, r.output
    r = runner.invoke(app, ["policy", "versions", "--json"])
    assert [v["version"] for v in json.loads(r.output)][-1] == shipped
