"""The queue page: default views with counts, live SLA countdowns, sortable keyset pages, bulk bar."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseFilters
from casemgr.db import read_session, write_session
from casemgr.views import listing
from casemgr.views.enums import SortKey
from casemgr.views.sla_display import sla_view, span, zone
from tests.web._helpers import HTML

from .conftest import make_cases, versions


def test_countdown_words() -> None:
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    tz = zone("Europe/Berlin")
    v = sla_view("open", "on_track", at + timedelta(hours=3, minutes=10), 8, tz, at)
    assert (v.state, v.label) == ("on_track", "due in 3 h 10 m")
    assert v.tooltip == "due Mon 02 Mar 2026 16:10 CET"
    v = sla_view("open", "on_track", at - timedelta(days=2, minutes=5), 48, tz, at)
    assert (v.state, v.label) == ("breached", "overdue 2 d")
    assert sla_view("open", "on_track", at + timedelta(hours=2), 24, tz, at).state == "at_risk"
    assert sla_view("open", "paused", None, None, tz, at).state == "paused"
    assert sla_view("closed", "none", None, None, tz, at).label == "closed"
    assert span(59) == "1 m" and span(3600 * 26) == "1 d 2 h" and span(86400 * 9 + 3600) == "9 d"
    assert zone("Not/AZone").key == "UTC"


def _set(ids: list[int], **values: object) -> None:
    with write_session() as s:
        s.execute(update(Case).where(Case.id.in_(ids)).values(**values))


def test_views_counts_and_live_breach(web_client, person, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 5, 4, 9, 0, tzinfo=UTC), tick=False)
    ids = make_cases(6)
    now = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    # Two already overdue although the stored state still says on_track (no worker scan ran).
    _set(ids[:2], sla_due_at=now - timedelta(days=3), sla_state="on_track")
    _set(ids[2:3], sla_due_at=now + timedelta(hours=5))  # due today
    _set(ids[3:4], sla_due_at=now + timedelta(days=5), waiting_on_customer=True, sla_state="paused")
    _set(ids[4:6], sla_due_at=now + timedelta(days=4))
    c, csrf = web_client("agent")
    me = re.search(r'<span class="who">(\S+)', c.get("/queue", headers=HTML).text).group(1)  # type: ignore[union-attr]
    r = c.post(f"/queue/{ids[5]}/claim", data={"version": versions([ids[5]])[0]["version"]},
               headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert f'<td class="assignee">{me}</td>' in r.text
    page = c.get("/queue?view=new", headers=HTML).text
    counts = dict(re.findall(r'data-view="([^"]+)"[^>]*>[^<]*<span class="count">(\d+)</span>', page))
    assert counts["new"] == "5" and counts["mine"] == "1" and counts["waiting"] == "1"
    assert counts["due_today"] == "1" and counts["breached"] == "2" and counts["all"] == "6"
    assert "1–5 of 5" in page
    page = c.get("/queue?view=breached", headers=HTML).text
    assert page.count('class="badge breached"') == 2 and "overdue 3 d" in page
    # Time passes: the due-today case is now overdue on the next render, without any scan.
    time_machine.move_to(now + timedelta(hours=6), tick=False)
    c, _ = web_client("agent")  # six idle hours ended the first session (idle timeout): sign in again
    page = c.get("/queue?view=breached", headers=HTML).text
    assert page.count('class="badge breached"') == 3 and "overdue 1 h" in page


def test_user_time_zone_in_the_tooltip(web_client, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 7, 1, 8, 0, tzinfo=UTC), tick=False)
    cid = make_cases(1)[0]
    _set([cid], sla_due_at=datetime(2026, 7, 1, 10, 30, tzinfo=UTC))
    c, csrf = web_client("agent")
    assert 'title="due Wed 01 Jul 2026 10:30 UTC"' in c.get("/queue", headers=HTML).text
    r = c.post("/profile", data={"csrf_token": csrf, "time_zone": "America/New_York"}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/queue", headers=HTML).text
    assert 'title="due Wed 01 Jul 2026 06:30 EDT"' in page and "due in 2 h 30 m" in page
    r = c.post("/profile", data={"csrf_token": csrf, "time_zone": "Mars/Olympus"}, headers=HTML)
    assert r.status_code == 422 and "unknown time zone" in r.text


def _walk(session, sort: SortKey, limit: int, matches: int | None = None,  # type: ignore[no-untyped-def]
          query: listing.CaseQuery | None = None) -> list[int]:
    out: list[int] = []
    cursor = None
    while True:
        rows, cursor = listing.list_page(session, query or listing.CaseQuery(), sort, limit=limit, cursor=cursor,
                                         matches=matches)
        out += [c.id for c in rows]  # type: ignore[misc]
        if cursor is None:
            return out


def test_every_sort_pages_through_every_case_once_in_order(time_machine) -> None:  # type: ignore[no-untyped-def]
    base = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    time_machine.move_to(base, tick=False)
    ids = make_cases(11)
    prios = ["low", "urgent", "normal", "high", "urgent", "normal", "low", "high", "normal", "urgent", "normal"]
    for i, cid in enumerate(ids):
        due = None if i % 4 == 0 else base + timedelta(hours=(i * 7) % 5)  # ties and missing due times
        _set([cid], priority=prios[i], sla_due_at=due, updated_at=base + timedelta(minutes=(i * 3) % 4),
             created_at=base - timedelta(days=i % 3))
    with read_session() as s:
        cases = {c.id: c for c in s.execute(select(Case)).scalars()}
        far = datetime.max.replace(tzinfo=UTC)

        def due_key(c: Case) -> tuple[int, datetime, int]:
            return (c.sla_due_at is None, c.sla_due_at or far, c.id or 0)

        expected = {
            SortKey.SLA: sorted(ids, key=lambda i: due_key(cases[i])),
            SortKey.PRIORITY: sorted(ids, key=lambda i: (listing.PRIORITY_ORDER.index(cases[i].priority),
                                                         *due_key(cases[i]))),
            SortKey.UPDATED: sorted(ids, key=lambda i: (cases[i].updated_at, i), reverse=True),
            SortKey.CREATED: sorted(ids, key=lambda i: (cases[i].created_at, i), reverse=True),
        }
        for sort, want in expected.items():
            for limit in (1, 3, 4, 50):
                assert _walk(s, sort, limit) == want, (sort, limit)
                # Few matches: sorted after the filter's index read (SQLite), the same order and pages.
                assert _walk(s, sort, limit, matches=len(ids)) == want, (sort, limit, "few matches")
                # Many matches of a filter, recency sort: read in the sort index's order, the same rows.
                assert _walk(s, sort, limit, matches=listing.SORT_MATCHES + 1,
                             query=listing.CaseQuery(filters=CaseFilters(queue=cases[ids[0]].queue))) \
                    == [i for i in want if cases[i].queue == cases[ids[0]].queue], (sort, limit, "many matches")
                # The hint for "rare" filters (waiting, one assignee) changes the plan, never the rows.
                waiting = listing.CaseQuery(waiting=False)
                assert _walk(s, sort, limit, matches=len(ids), query=waiting) == want, (sort, limit, "waiting")
    from casemgr.errors import BadRequest

    with read_session() as s:
        _, cur = listing.list_page(s, listing.CaseQuery(), SortKey.UPDATED, limit=2)
        try:
            listing.list_page(s, listing.CaseQuery(), SortKey.PRIORITY, limit=2, cursor=cur)
            raise AssertionError("a cursor of another sort must be refused")
        except BadRequest:
            pass


def test_bulk_bar_form_reports_changed_and_skipped(web_client, person) -> None:  # type: ignore[no-untyped-def]
    other = person("omar", "agent")
    ids = make_cases(4)
    c, csrf = web_client("lead")
    refs = versions(ids)
    other.client.post(f"/api/cases/{ids[0]}/notes", json={"body": "x", "version": refs[0]["version"]})
    page = c.get("/queue", headers=HTML).text
    assert 'id="bulk-form"' in page and 'form="bulk-form"' in page
    r = c.post("/queue/bulk", data={"csrf_token": csrf, "action": "set_priority", "priority": "high",
                                    "case": [f"{x['id']}:{x['version']}" for x in refs], "back": "/queue?view=all"},
               headers=HTML, follow_redirects=True)
    assert r.status_code == 200
    assert "3 changed, 1 skipped: changed by someone else" in r.text and 'id="bulk-notice"' in r.text
    r = c.post("/queue/bulk", data={"csrf_token": csrf, "action": "set_priority", "priority": "high",
                                    "back": "https://evil.example/"}, headers=HTML)
    assert r.status_code == 422 and "select at least one case" in r.text
    r = c.post("/queue/bulk", data={"csrf_token": csrf, "action": "claim", "case": "1:x"}, headers=HTML)
    assert r.status_code == 422


def test_counts_stop_at_their_cap(web_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.views import defaults

    monkeypatch.setattr(defaults, "TAB_COUNT_CAP", 2)
    monkeypatch.setattr(listing, "COUNT_CAP", 4)
    make_cases(6)
    c, _ = web_client("agent")
    page = c.get("/queue?view=new", headers=HTML).text
    counts = dict(re.findall(r'data-view="([^"]+)"[^>]*>[^<]*<span class="count">([^<]+)</span>', page))
    assert counts["new"] == "2+" and counts["all"] == "2+" and counts["mine"] == "0"
    assert "1–6 of 4+" in page  # the page total has its own (higher) cap; all six rows are listed
    with read_session() as s:
        assert listing.count(s, listing.CaseQuery(), cap=10) == 6 and listing.count(s, listing.CaseQuery()) == 5
        assert listing.count_text(5) == "4+" and listing.count_text(4) == "4"
