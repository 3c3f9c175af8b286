"""Migrations run forward on a populated database: demo data plus intake mail (messages, attachments, AI calls and
decisions, jobs, notes, audit chain) is stepped down to the first revision and forward again through every
head, keeping every row; afterwards the schema equals the models, the audit chain verifies and the app works.
(tests/test_migrations.py covers the empty-database round trip and idempotent upgrade.)"""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, select, text

from casemgr import migrate
from casemgr.audit import service as audit
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.runtime import rebuild

from .helpers import assert_consistent, raw_mail

CORE = ("cases", "parties", "tasks", "notes", "stage_history", "audit_events", "audit_head", "users", "user_roles",
        "api_keys", "messages", "attachments", "quarantine", "ai_calls", "ai_decisions", "policy_versions", "jobs")


def _counts(url: str) -> dict[str, int]:
    eng = create_engine(url)
    present = set(inspect(eng).get_table_names())
    with eng.connect() as conn:
        out = {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in CORE if t in present}
    eng.dispose()
    return out


def _populate(run_jobs: Any) -> None:
    from casemgr.demo import seed_cases, seed_users
    from casemgr.intake.service import ingest_raw

    seed_users()
    seed_cases(n_complaints=40, n_contracts=15)
    for i in range(10):
        ingest_raw(raw_mail(f"<mig-{i}@example.org>", subject=f"migration test {i}"), channel="email")
    ingest_raw(b"not a message at all", channel="import")  # one quarantined
    run_jobs()  # AI enrichment (calls, decisions) runs in the worker, after the intake commit


def test_migrations_step_down_and_forward_through_every_revision_keeping_data(app: Any, api_key: Any,
                                                                             run_jobs: Any) -> None:
    _populate(run_jobs)
    url = get_settings().effective_database_url
    before = _counts(url)
    assert before["cases"] >= 60 and before["messages"] >= 10 and before["ai_decisions"] > 0, before
    cfg = migrate.alembic_config(url)
    revisions = [s.revision for s in reversed(list(ScriptDirectory.from_config(cfg).walk_revisions()))]
    assert revisions[0] == "0001_initial" and len(revisions) >= 4
    rebuild()  # release pooled connections before schema changes
    command.downgrade(cfg, revisions[0])
    assert _counts(url) == {t: n for t, n in before.items() if t in _counts(url)}
    for rev in revisions[1:]:  # forward one revision at a time, each on the populated database
        command.upgrade(cfg, rev)
        if rev == "0014_audit_chain_keyed":
            # Re-keying the chain adds one event that records how it found the old chain (issue 18).
            before["audit_events"] += 1
        now_counts = _counts(url)
        assert {t: now_counts[t] for t in before if t in now_counts} == \
            {t: n for t, n in before.items() if t in now_counts}, rev
    migrate.upgrade()  # and any other heads
    rebuild()
    assert _counts(url) == before
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from casemgr.models_registry import metadata

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        # Full-text search and the lower(email) expression index live outside the models: see test_migrations.
        return not (name or "").startswith(("cases_fts", "ix_cases_fulltext", "ix_parties_email_lower"))

    eng = create_engine(url)
    with eng.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False, "include_name": include_name})
        assert compare_metadata(ctx, metadata) == []
    eng.dispose()
    with read_session() as s:
        assert audit.verify(s).ok
    assert_consistent()
    # The service works on the migrated data: read, write, and the new write extends the audit chain.
    with TestClient(app, headers={"X-API-Key": api_key("agent")}) as c:
        page = c.get("/api/cases", params={"limit": 5})
        assert page.status_code == 200 and len(page.json()["items"]) == 5
        assert c.post("/api/cases", json={"case_type": "complaint", "subject": "after migration"}).status_code == 201
    with read_session() as s:
        assert audit.verify(s).ok
        from casemgr.cases.models import Case

        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == before["cases"] + 1
