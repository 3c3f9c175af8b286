"""Time per review item and the share of quick accepts per reviewer (issue 21), recorded with each verdict."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import time_machine
from fastapi.testclient import TestClient

from casemgr.db import read_session
from casemgr.governance.review_speed import per_reviewer
from tests.web._helpers import HTML, add_sampled, login


def test_time_per_item_is_recorded_and_quick_accepts_are_counted(app, make_user, make_case) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("reviewer")
    ids = [add_sampled(make_case(subject=f"case {i}")) for i in range(3)]
    t0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(t0, tick=False) as traveller:
        c = TestClient(app)
        csrf = login(c, name, pw)
        page = c.get("/review", headers=HTML).text
        shown = re.search(r'name="shown_at" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
        for d, wait, verdict in zip(ids, (2, 30, 3), ("accept", "accept", "override"), strict=True):
            traveller.shift(wait)
            r = c.post(f"/review/{d}", data={"csrf_token": csrf, "verdict": verdict, "reason_code": "other",
                                             "shown_at": shown}, headers=HTML, follow_redirects=True)
            assert r.status_code == 200, r.text[:300]
    with read_session() as s:
        (row,) = per_reviewer(s)
    assert row["reviewer"] == f"user:{name}" and row["items"] == 3 and row["accepts"] == 2
    assert row["quick_accept_share"] == 0.5  # 2 s: quick; 32 s: not
    assert 'id="review-speed"' in r.text
