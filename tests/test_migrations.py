"""Migrations: the migrated schema equals the models, on SQLite and PostgreSQL, and migrations run forward
on a populated database."""

from __future__ import annotations

import os
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text

from casemgr import migrate
from casemgr.config import get_settings
from casemgr.models_registry import metadata
from casemgr.runtime import rebuild


def _include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    # Full-text search lives outside the models: SQLite's FTS5 table (and its shadow tables) and PG's GIN index;
    # so does the lower(email) expression index of customer look-ups (migration 0011).
    return not (name or "").startswith(("cases_fts", "ix_cases_fulltext", "ix_parties_email_lower"))


def _diff(url: str) -> list:  # type: ignore[type-arg]
    eng = create_engine(url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False, "include_name": _include_name})
        with warnings.catch_warnings():  # the expression index is left out on purpose (see _include_name)
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index "
                                              "ix_parties_email_lower")
            diffs = compare_metadata(ctx, metadata)
    eng.dispose()
    return diffs


def test_migrated_schema_matches_models() -> None:
    url = get_settings().effective_database_url
    assert _diff(url) == []
    eng = create_engine(url)
    tables = set(inspect(eng).get_table_names())
    eng.dispose()
    assert {"cases", "audit_events", "messages", "users", "jobs", "policy_versions"} <= tables


def test_upgrade_is_idempotent_and_runs_on_a_populated_database(agent_client) -> None:
    r = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": "before upgrade"})
    assert r.status_code == 201
    migrate.upgrade()  # second run: a no-op on a populated database
    from casemgr.cases.models import Case
    from casemgr.db import read_session

    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1


def test_downgrade_to_base_and_upgrade_again(tmp_path, monkeypatch) -> None:
    if os.environ.get("CASEMGR_TEST_DATABASE_URL"):
        url = os.environ["CASEMGR_TEST_DATABASE_URL"].rsplit("/", 1)[0] + "/casemgr_test2"
        monkeypatch.setenv("CASEMGR_DATABASE_URL", url)
    else:
        monkeypatch.setenv("CASEMGR_DATA_DIR", str(tmp_path / "other"))
        monkeypatch.delenv("CASEMGR_DATABASE_URL", raising=False)
    rebuild()
    settings = get_settings()
    migrate.upgrade()
    migrate.downgrade_to_base()
    eng = create_engine(settings.effective_database_url)
    assert "cases" not in inspect(eng).get_table_names()
    eng.dispose()
    migrate.upgrade()
    assert _diff(settings.effective_database_url) == []
    eng = create_engine(settings.effective_database_url)
    with eng.connect() as conn:
        heads = conn.execute(text("select count(*) from alembic_version")).scalar_one()
    eng.dispose()
    assert heads >= 1


def test_one_head_and_revision_ids_fit_alembic_version() -> None:
    """alembic_version.version_num is varchar(32): a longer revision id passes on SQLite and fails every PostgreSQL
    upgrade (it happened once); and parallel branches must be rebased onto one head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1, script.get_heads()
    too_long = [r.revision for r in script.walk_revisions() if len(r.revision) > 32]
    assert too_long == []
