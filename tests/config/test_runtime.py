"""The application context (casemgr.runtime): built once per entry point, kept on app.state, one per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from casemgr import runtime
from casemgr.config import Settings, get_settings
from casemgr.db import get_engine, read_session
from casemgr.web.app import create_app


def test_create_app_builds_its_context_from_the_settings_given_and_serves_with_them() -> None:
    settings = Settings(public_api_docs=True)
    app = create_app(settings=settings)
    rt = app.state.runtime
    assert rt.settings is settings and runtime.current() is rt and get_settings() is settings
    # The route dependency reads the app's settings: the API map is public with these, behind a login without.
    with TestClient(app) as c:
        assert c.get("/openapi.json").status_code == 200
    with TestClient(create_app(settings=Settings(public_api_docs=False))) as c:
        assert c.get("/openapi.json").status_code == 401


def test_create_app_without_arguments_keeps_the_context_already_built() -> None:
    rt = runtime.current()
    app = create_app()
    assert app.state.runtime is rt
    with TestClient(app) as c:
        assert c.get("/healthz").json() == {"status": "ok"}


def test_every_part_lives_in_the_context_and_a_new_context_has_new_ones() -> None:
    from casemgr.casetypes.registry import live_registry
    from casemgr.governance.policy import active_policy
    from casemgr.rules.service import get_service
    from casemgr.sla.calendar import get_calendar

    old = runtime.current()
    parts = (get_service(), live_registry(), get_calendar(), get_engine(), get_engine(write=True))
    assert parts == (old.rules, old.case_types, old.calendar, old.engine(), old.engine(write=True))
    assert active_policy() is old.policy.get()
    new = runtime.rebuild()
    assert old.closed and runtime.current() is new and new.settings is not old.settings
    for before, after in zip(parts, (new.rules, new.case_types, new.calendar, new.engine(), new.engine(write=True)),
                             strict=True):
        assert before is not after
    with read_session() as s:  # the new engines reach the same database
        assert s.connection().exec_driver_sql("SELECT 1").scalar() == 1


def test_the_rules_service_follows_a_new_context_not_the_settings_identity(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A service is bound to its context: no settings change is detected by id(); another policies dir is
    another context (with a service that compiled the other rules)."""
    import shutil

    from casemgr.rules.service import evaluate, get_service

    before = evaluate({"type": "complaint", "category": "credit_card"}).queue
    policies = tmp_path / "policies"
    shutil.copytree(get_settings().policies_dir, policies)
    f = policies / "rules" / "complaints.yaml"
    f.write_text(f.read_text().replace("queue: complaints-credit-card", "queue: complaints-priority"))
    monkeypatch.setenv("CASEMGR_POLICIES_DIR", str(policies))
    assert evaluate({"type": "complaint", "category": "credit_card"}).queue == before  # same context
    svc = get_service()
    runtime.rebuild()
    assert get_service() is not svc
    assert evaluate({"type": "complaint", "category": "credit_card"}).queue == "complaints-priority"
    assert before == "complaints-credit-card"


def test_the_cli_builds_a_context_when_none_was_installed() -> None:
    from casemgr.cli import app

    runtime.close_current()
    assert runtime.installed() is None
    res = CliRunner().invoke(app, ["audit", "verify"])
    assert res.exit_code == 0, res.output
    rt = runtime.installed()
    assert rt is not None and rt.settings.resolved_data_dir == Path(get_settings().data_dir).resolve()
    # a caller's context is kept
    assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0 and runtime.installed() is rt


@pytest.mark.sqlite_only
@pytest.mark.parametrize("first", ["read", "write"])
def test_sqlite_writes_fsync_and_lock_whichever_engine_is_asked_for_first(first: str) -> None:
    """Durable before ack (issue 19) holds in a process whose first query is a read: its writes still go
    through the write engine (synchronous=FULL, BEGIN IMMEDIATE), never through the read engine."""
    from sqlalchemy import text

    rt = runtime.build(get_settings())
    try:
        engines = [rt.engine(write=(first == "write")), rt.engine(write=(first != "write"))]
        read, write = (engines if first == "read" else engines[::-1])
        assert write is not read
        with write.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
        with read.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 1  # NORMAL
    finally:
        rt.close()
