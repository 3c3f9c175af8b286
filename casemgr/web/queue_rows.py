"""Queue rows as HTML, rendered in Python: the queue page has 50 of them on every load (issue 23).

As a Jinja include, a row cost ~100 escape/getattr calls and as many generator yields through four template
levels: 9 of the ~25 ms of CPU of a queue page at 1M cases. Here each value is escaped once (markupsafe, as
autoescape does), the assignable users once per page, and the clock is read once per page. The markup is
what `_queue_row.html` produced; tests/workspace/test_queue_rows.py compares both, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from casemgr.cases.enums import CaseStatus
from casemgr.clock import now
from casemgr.views.sla_display import SlaView, sla_view, span

NO_ASSIGNEE = "\u2014"


def _e(value: Any) -> str:
    return str(escape(value))


def local_dt(value: Any, tz: ZoneInfo) -> str:
    """`x | local_dt` of the templates (casemgr.web.pages_common)."""
    if not isinstance(value, datetime):
        from casemgr.web.pages_common import _fmt_dt

        return _fmt_dt(value)
    local = value.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def ago(value: Any, at: datetime) -> str:
    """`x | ago` of the templates, against the page's clock reading."""
    if not isinstance(value, datetime):
        return ""
    return span((at - value).total_seconds()) + " ago"


def sla_badge(s: SlaView) -> str:
    """What `_sla_badge.html` renders for `s`."""
    title = f' title="{_e(s.tooltip)}"' if s.tooltip else ""
    label = _e(s.label)
    inner = f'<time datetime="{_e(s.iso)}">{label}</time>' if s.iso else label
    return f'<span class="badge {_e(s.state)}"{title}>{inner}</span>'


@dataclass(frozen=True)
class RowPage:
    """What every row of one page shares: computed (and escaped) once per page, not once per row."""

    tz: ZoneInfo
    at: datetime
    can_assign: bool
    csrf: str  # escaped
    users: tuple[tuple[str, str], ...]  # (name, escaped name)

    @classmethod
    def of(cls, *, tz: ZoneInfo, can_assign: bool, users: Sequence[str], csrf_token: str | None,
           at: datetime | None = None) -> RowPage:
        return cls(tz=tz, at=at or now(), can_assign=can_assign, csrf=_e(csrf_token),
                   users=tuple((u, _e(u)) for u in users))


def row_html(page: RowPage, case: Any, assignee: str | None, mine: bool, *, row_error: str | None = None,
             take_over_from: str | None = None) -> Markup:
    """One `<tr>` of the queue table: checkbox, reference, subject, type and stage, priority, live SLA badge,
    queue, assignee, updated/created (relative, absolute in the title), and the claim/assign menu."""
    cid = _e(case.id)
    version = _e(case.version)
    ref = _e(case.reference or case.id)
    subject = _e(case.subject)
    priority = _e(case.priority)
    sla = sla_view(case.status, case.sla_state, case.sla_due_at, case.sla_hours, page.tz, page.at)
    csrf = page.csrf
    error = f'<span class="error row-error" role="alert">{_e(row_error)}</span>' if row_error else ""
    take_over = ""
    if take_over_from and page.can_assign:
        take_over = (
            f'\n    <form method="post" action="/queue/{cid}/claim" hx-post="/queue/{cid}/claim" '
            f'hx-target="#case-row-{cid}" hx-swap="outerHTML" class="inline take-over">\n'
            f'      <input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="version" '
            f'value="{version}"><input type="hidden" name="take_over" value="yes">\n'
            f'      <button type="submit" class="warn">Take over from {_e(take_over_from)}</button>\n'
            "    </form>\n    ")
    menu = ""
    if page.can_assign and case.status == CaseStatus.OPEN:
        claim = "" if mine else (
            f'\n        <form method="post" action="/queue/{cid}/claim" hx-post="/queue/{cid}/claim" '
            f'hx-target="#case-row-{cid}" hx-swap="outerHTML" hx-disabled-elt="find button" class="claim-form">\n'
            f'          <input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="version" '
            f'value="{version}">\n'
            "          <button type=\"submit\">Claim</button>\n"
            "        </form>")
        options = "".join(f"<option {'selected' if assignee == name else ''}>{escaped}</option>"
                          for name, escaped in page.users)
        menu = (
            '\n    <details class="menu">\n'
            f'      <summary aria-label="Actions for {ref}">\u22ef</summary>\n'
            '      <div class="menu-body">\n'
            f"        {claim}\n"
            f'        <form method="post" action="/queue/{cid}/assign" hx-post="/queue/{cid}/assign" '
            f'hx-target="#case-row-{cid}" hx-swap="outerHTML" hx-disabled-elt="find button">\n'
            f'          <input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="version" '
            f'value="{version}">\n'
            f'          <label for="assign-{cid}">Assign to</label>\n'
            f'          <select id="assign-{cid}" name="assignee"><option value="">(unassigned)</option>{options}'
            "</select>\n"
            '          <button type="submit">Assign</button>\n'
            "        </form>\n"
            "      </div>\n"
            "    </details>\n    ")
    return Markup(
        f'\n<tr id="case-row-{cid}" data-case-id="{cid}" data-href="/cases/{cid}" class="{"mine" if mine else ""}">\n'
        f'  <td class="sel"><input type="checkbox" name="case" value="{cid}:{version}" form="bulk-form" '
        f'aria-label="Select {ref}"></td>\n'
        f'  <td class="ref"><a href="/cases/{cid}" class="case-link">{ref}</a></td>\n'
        f'  <td class="subject" title="{subject}">{subject}</td>\n'
        f'  <td class="stage">{_e(case.case_type)} \u00b7 {_e(case.stage)}</td>\n'
        f'  <td><span class="prio {priority}">{priority}</span></td>\n'
        f'  <td class="sla">{sla_badge(sla)}</td>\n'
        f'  <td class="queue-name">{_e(case.queue)}</td>\n'
        f'  <td class="assignee">{_e(assignee or NO_ASSIGNEE)}</td>\n'
        f'  <td class="updated" title="{_e(local_dt(case.updated_at, page.tz))}">{_e(ago(case.updated_at, page.at))}</td>\n'
        f'  <td class="created" title="{_e(local_dt(case.created_at, page.tz))}">{_e(ago(case.created_at, page.at))}</td>\n'
        '  <td class="row-actions">\n'
        f"    {error}\n"
        f"    {take_over}\n"
        f"    {menu}\n"
        "  </td>\n"
        "</tr>")
