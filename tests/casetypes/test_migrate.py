"""Issue 22: `casemgr casetypes migrate --from V --to W [--dry-run]` moves running cases whose stage exists in W,
lists the others with why, and audits each move."""

from __future__ import annotations

import json

from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.audit.service import verify
from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.casetypes.documents import CASE_TYPES
from casemgr.cli import app
from casemgr.db import read_session, write_session
from tests.casetypes.helpers import publish_v2


def _case(case_id: int) -> Case:
    with read_session() as s:
        c = s.get(Case, case_id)
        assert c is not None
        s.expunge(c)
        return c


def _walk(case_id: int, *stages: str) -> None:
    for to in stages:
        with write_session() as s:
            service.transition(s, case_id, to, _case(case_id).version, "user:test",
                               resolution_code="withdrawn" if to == "closed" else None)


def _migrations() -> list[AuditEvent]:
    with read_session() as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.action == "case.type_version_migrated")
                              .order_by(AuditEvent.seq)).scalars())


def _cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, ["casetypes", "migrate", *args])
    return r.exit_code, r.output


def _setup(make_case) -> tuple[int, int, int, str, str]:  # type: ignore[no-untyped-def]
    movable = make_case(subject="in intake")
    stuck = make_case(subject="asking for feedback")
    _walk(stuck, "triage", "resolution", "feedback")
    closed = make_case(subject="closed before")
    _walk(closed, "closed")
    v1 = CASE_TYPES.shipped().version
    v2 = publish_v2()
    return movable, stuck, closed, v1, v2


def test_dry_run_lists_what_would_move_and_what_cannot_and_changes_nothing(make_case) -> None:  # type: ignore[no-untyped-def]
    movable, stuck, closed, v1, v2 = _setup(make_case)
    after_v2 = make_case(subject="already on v2")
    code, out = _cli("--from", "v1", "--to", "v2", "--dry-run", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["from"], report["to"], report["dry_run"]) == (v1, v2, True)
    assert [c["id"] for c in report["cases"]] == [movable]
    [blocked] = report["cannot_move"]
    assert blocked["id"] == stuck and "stage 'feedback' does not exist" in blocked["reason"]
    assert closed not in [c["id"] for c in report["cases"] + report["cannot_move"]]  # only running cases
    assert after_v2 not in [c["id"] for c in report["cases"] + report["cannot_move"]]
    assert _case(movable).case_type_version == v1 and _case(movable).version == 1
    assert _migrations() == []
    code, text = _cli("--from", "v1", "--to", "v2", "--dry-run")
    assert code == 0 and "would move 1 case(s)" in text and "cannot move: CMP-" in text


def test_real_run_moves_audits_and_the_case_then_follows_the_new_version(make_case) -> None:  # type: ignore[no-untyped-def]
    movable, stuck, _, v1, v2 = _setup(make_case)
    version_before = _case(movable).version
    code, out = _cli("--from", v1[:8], "--to", "v2", "--json", "--author", "system:test")
    assert code == 0, out
    report = json.loads(out)
    assert (report["moved"], report["blocked"], report["dry_run"]) == (1, 1, False)
    moved = _case(movable)
    assert moved.case_type_version == v2 and moved.version == version_before + 1
    assert _case(stuck).case_type_version == v1
    [ev] = _migrations()
    assert (ev.case_id, ev.actor, ev.before, ev.after["case_type_version"]) == (
        movable, "system:test", {"case_type_version": v1}, v2)
    with read_session() as s:
        assert verify(s).ok
    # The moved case keeps its intake due time but enters triage under v2 (6 h, v1 had 8 h).
    assert moved.sla_hours == 4
    _walk(movable, "triage")
    assert _case(movable).sla_hours == 6
    # Nothing is left to move.
    code, out = _cli("--from", "v1", "--to", "v2", "--json")
    assert json.loads(out)["moved"] == 0


def test_bad_versions_exit_1_with_a_message(make_case) -> None:  # type: ignore[no-untyped-def]
    publish_v2()
    code, out = _cli("--from", "v1", "--to", "v7")
    assert code == 1 and "no case-types version 'v7'" in out
    code, out = _cli("--from", "v2", "--to", "v2")
    assert code == 1 and "same version" in out
