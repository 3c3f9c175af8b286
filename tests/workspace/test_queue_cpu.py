"""What keeps the queue page cheap (issue 23): the tab bar is one reused statement that counts exactly what each
view lists, and a page runs a bounded number of statements. No timing here: `casemgr bench pages` measures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.users import service as users
from casemgr.views import defaults, listing
from casemgr.views.sla_display import zone
from tests.web._helpers import HTML

from .conftest import make_cases

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _spread(ids: list[int], me: int, other: int) -> None:
    """Cases in every state a tab tells apart: mine, someone else's, waiting, due today, overdue, other queues,
    closed."""
    plan: list[dict[str, Any]] = [
        {"assignee_id": me, "sla_due_at": NOW + timedelta(hours=3)},
        {"assignee_id": me, "sla_due_at": NOW - timedelta(days=2), "queue": "complaints-credit-card"},
        {"assignee_id": other, "waiting_on_customer": True, "sla_state": "paused"},
        {"sla_due_at": NOW + timedelta(hours=20)},  # tomorrow in UTC, today in New York
        {"sla_due_at": NOW - timedelta(minutes=1), "queue": "complaints-credit-card"},
        {"sla_due_at": None, "queue": "contracts-intake"},
        {"status": "closed", "assignee_id": me, "sla_due_at": NOW - timedelta(days=1)},
        {"waiting_on_customer": True, "queue": "contracts-intake", "sla_due_at": NOW + timedelta(days=3)},
        {"sla_due_at": NOW},  # due this very moment: breached, no longer due today
    ]
    with write_session() as s:
        for cid, values in zip(ids, plan, strict=False):
            s.execute(update(Case).where(Case.id == cid).values(**values))


@pytest.mark.parametrize("cap", [1_000, 1])
def test_every_tab_counts_what_its_view_lists(app, make_user, time_machine, monkeypatch, cap) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(NOW, tick=False)
    monkeypatch.setattr(defaults, "TAB_COUNT_CAP", cap)
    ids = make_cases(10)
    agent_name, _ = make_user("agent")
    lead_name, _ = make_user("lead")
    with write_session() as s:
        agent = users.get_user_by_name(s, agent_name)
        lead = users.get_user_by_name(s, lead_name)
        assert agent is not None and lead is not None
        # A key without a user whose name is a user's: "My open" follows the view's own filter (by name).
        _, secret = users.create_api_key(s, agent_name, None, ["intake"], actor="system:test")
    _spread(ids, int(agent.id or 0), int(lead.id or 0))
    with read_session() as s:
        keyed = users.principal_for_api_key(s, secret)
        assert keyed is not None and keyed.user_id is None
        who_all = [users.principal_for_user(s, agent), users.principal_for_user(s, lead), keyed]
        for who in who_all:
            for tz in (zone(None), zone("America/New_York")):
                tabs = {t.key: t.count for t in defaults.tabs(s, who, tz)}
                views = [v.value for v in defaults.VIEWS] + [f"queue:{n}" for n in defaults.queue_names(who)]
                assert list(tabs) == views
                for key in views:
                    listed = listing.count(s, defaults.query_for(key, who, tz, NOW), cap=cap)
                    assert tabs[key] == listed, (who.username, tz.key, key)
                    # A capped tab's page total: the same view counted alone, up to another cap.
                    for total_cap in (cap, 3):
                        assert defaults.view_count(s, who, tz, key, total_cap) \
                            == listing.count(s, defaults.query_for(key, who, tz, NOW), cap=total_cap), (key, total_cap)
        counts = {t.key: t.count for t in defaults.tabs(s, who_all[0], zone(None))}
    if cap == 1_000:  # the spread is seen: the comparison above is not between zeros
        assert counts["mine"] == 2 and counts["breached"] == 3 and counts["waiting"] == 2
        assert counts["due_today"] == 1 and counts["queue:complaints-credit-card"] == 2


def test_the_tab_bar_is_one_statement_built_once(app, make_user) -> None:  # type: ignore[no-untyped-def]
    make_cases(2)
    name, _ = make_user("lead")
    with read_session() as s:
        user = users.get_user_by_name(s, name)
        assert user is not None
        who = users.principal_for_user(s, user)
        defaults.tabs(s, who, zone(None))
        before = defaults._tabs_statement.cache_info()
        with statements() as seen:
            tabs = defaults.tabs(s, who, zone("Europe/Berlin"))
        after = defaults._tabs_statement.cache_info()
    assert len(seen) == 1 and "UNION ALL" in seen[0]
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)
    assert len(tabs) == len(defaults.VIEWS) + len(defaults.queue_names(who))


def test_queue_page_statement_budget(web_client) -> None:  # type: ignore[no-untyped-def]
    """The default queue page of an agent: principal (session, user, roles), time zone, tab bar, total, one page
    of rows, assignee names, assignable users, saved views. A per-row query or a per-tab count breaks it."""
    make_cases(60)
    c, _ = web_client("agent")
    c.get("/queue", headers=HTML)
    with statements() as seen:
        r = c.get("/queue", headers=HTML)
    assert r.status_code == 200 and r.text.count('class="case-link"') == 50
    assert len(seen) <= 8, "\n".join(s[:120] for s in seen)


def test_a_page_of_rows_builds_no_orm_objects(app) -> None:  # type: ignore[no-untyped-def]
    ids = make_cases(3)
    with read_session() as s:
        rows, _ = listing.list_page(s, listing.CaseQuery(), limit=50)
        assert sorted(r.id for r in rows) == sorted(ids)
        assert not any(isinstance(o, Case) for o in s.identity_map.values())
        # The columns a list never shows are not read at all.
        assert all(not hasattr(r, name) for r in rows for name in listing.LIST_VIEW_DEFERRED)
