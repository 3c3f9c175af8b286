"""Queue rows rendered in Python (casemgr.web.queue_rows, issue 23) are the markup the row template rendered:
compared byte for byte with that template (kept in tests/workspace/reference) over every branch of it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import casemgr.web.pages_common  # noqa: F401 - the sla(), local_dt and ago helpers the template uses
from casemgr.views.sla_display import zone
from casemgr.web.queue_rows import RowPage, row_html
from casemgr.web.templating import templates

TEMPLATE = templates.env.from_string((Path(__file__).parent / "reference" / "queue_row_before_issue23.html").read_text())
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _case(**over: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": 4711, "version": 3, "reference": "CMP-4711", "subject": 'Charged <twice> & "again" \'twice\'',
        "case_type": "complaint", "stage": "triage", "priority": "urgent", "status": "open", "sla_state": "on_track",
        "sla_due_at": NOW + timedelta(hours=3, minutes=10), "sla_hours": 8.0, "queue": "complaints-credit-card",
        "updated_at": NOW - timedelta(minutes=5), "created_at": NOW - timedelta(days=2, hours=3)}
    values.update(over)
    return SimpleNamespace(**values)


CASES = [
    _case(),
    _case(reference=None, priority="low", sla_due_at=None),  # no reference, no SLA
    _case(status="closed", stage="closed"),
    _case(sla_state="paused", sla_due_at=None),
    _case(sla_due_at=NOW - timedelta(days=3)),  # breached
    _case(sla_due_at=NOW + timedelta(hours=1), sla_hours=8.0),  # at risk by the share left
    _case(stage="<b>x</b>", queue="q&a", case_type="con'tract"),
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_a_row_is_what_the_template_rendered(case: SimpleNamespace, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(NOW, tick=False)
    users = ["agent", "lead<x>", "pat & sam"]
    shapes = itertools.product(
        ["lead<x>", None],  # assignee
        [False, True],  # mine
        [True, False],  # can_assign
        ["tok&en", None],  # csrf token (None renders "None", as the template did)
        ["UTC", "America/New_York"],
        [None, "changed <meanwhile>"],  # row error
        [None, "o'brien"],  # take over from
    )
    for assignee, mine, can_assign, csrf, tz_name, error, take_over in shapes:
        tz = zone(tz_name)
        want = TEMPLATE.render(r={"case": case, "assignee": assignee, "mine": mine}, can_assign=can_assign,
                               users=users if can_assign else [], csrf_token=csrf, tz=tz, row_error=error,
                               take_over_from=take_over)
        page = RowPage.of(tz=tz, can_assign=can_assign, users=users if can_assign else [], csrf_token=csrf)
        got = row_html(page, case, assignee, mine, row_error=error, take_over_from=take_over)
        assert str(got) == want, (assignee, mine, can_assign, csrf, tz_name, error, take_over)
