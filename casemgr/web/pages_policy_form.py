"""/governance/policy/form: the AI policy edited as a form (issue 21), for governance leads who do not write YAML.

The form is generated from the policy schema (casemgr.governance.policy_form). A submitted form becomes YAML text
written into the active policy's text (comments kept), and from there everything is the YAML view's path
(pages_governance): the same validation, diff in words, simulation and change request. Problems come back at
their inputs (and name their ai-policy.yaml line); "Open as YAML" carries the draft over to the advanced view.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.governance import policy_form as pf
from casemgr.governance.enums import Widget
from casemgr.governance.policy import content_version
from casemgr.policyfile import PolicyFileError
from casemgr.users.service import Principal
from casemgr.web.deps import page
from casemgr.web.pages_common import redirect, render
from casemgr.web.pages_governance import (
    Check,
    _policy_active,
    _policy_check,
    _policy_page,
    _policy_publish,
)

router = APIRouter(tags=["pages"], include_in_schema=False)
PolicyEditor = Annotated[Principal, Depends(page("policy.publish"))]
ACTIONS = ("check", "simulate", "publish", "yaml")
MAX_VALUE = 2000  # characters of one submitted input (the whole body is bounded by the body-limit middleware)


def _render(request: Request, values: dict[str, Any], *, check: Check | None = None, text: str = "",
            reason: str = "", error: str | None = None, status_code: int = 200,
            base_version: str | None = None) -> HTMLResponse:
    from casemgr.documents.changes import single_person_publish

    errors: dict[str, list[str]] = {}
    problems: list[dict[str, Any]] = []
    if check is not None and check.problems:
        errors, problems = pf.field_problems(check.problems, text, pf.anchors(pf.sections()))
    with read_session() as s:
        active_text, version = _policy_active(s)
    return render(request, "policy_form.html", {
        "base_version": base_version or content_version(active_text),
        "sections": pf.sections(values, errors), "problems": problems, "check": check, "kind": "policy",
        "reason": reason, "error": error, "active_version": version or "file (never published)",
        "single_person": single_person_publish(), "status_conflict": status_code == 409}, status_code=status_code)


@router.get("/governance/policy/form", response_class=HTMLResponse)
def form_page(request: Request, who: PolicyEditor) -> Response:
    with read_session() as s:
        text, _ = _policy_active(s)
    return _render(request, pf.values_from_data(pf.base_data(text)))


def _submitted(form: Any) -> tuple[dict[str, Any], str, str, str]:
    """(input values as the form module reads them, action, reason, base version); unknown names are ignored."""
    raw = {str(k): str(form.get(k)) for k in form.keys()}  # so rows added in the browser are read back too
    inputs = [i for sec in pf.sections(raw) for i in _inputs(sec)]
    checks = {i.name for i in inputs if i.widget == Widget.CHECKS}
    names = {i.name for i in inputs}
    values: dict[str, Any] = {}
    for name in names:
        if name in checks:
            values[name] = [str(v)[:MAX_VALUE] for v in form.getlist(name)]
        elif name in form:
            values[name] = str(form.get(name))[:MAX_VALUE]
    return (values, str(form.get("action") or "check"), str(form.get("reason") or "")[:2000],
            str(form.get("base_version") or "")[:80])


def _inputs(sec: pf.Section) -> list[pf.Input]:
    out: list[pf.Input] = []
    for item in sec.items:
        out.extend([item] if isinstance(item, pf.Input) else [c for r in item.rows for c in r.cells])
    return out


def _handle(request: Request, who: Principal, values: dict[str, Any], action: str, reason: str,
            base_version: str) -> Response:
    if action not in ACTIONS:
        return _render(request, values, error=f"unknown action {action!r}", status_code=422)
    with read_session() as s:
        active_text, _ = _policy_active(s)
    if base_version != content_version(active_text):
        # The form's values are a whole policy: written over a newer version they would silently undo its changes.
        return _render(request, values, reason=reason, base_version=base_version or "?", status_code=409,
                       error="The policy in force changed since this form was opened (another change was published "
                             "or rolled back). Reload the form and make your change again.")
    text = pf.to_text(pf.data_from_values(values, pf.base_data(active_text)), active_text)
    if action == "yaml":  # the advanced view, with the form's draft in it (checked, so problems show at their line)
        return _policy_page(request, text=text, check=_policy_check(text, active_text, simulate=False),
                            reason=reason, notice="The form's draft, as YAML: nothing is stored until you submit.")
    check = _policy_check(text, active_text, simulate=action in ("simulate", "publish"))
    if check.problems:
        return _render(request, values, check=check, text=text, reason=reason, status_code=422)
    if action != "publish":
        return _render(request, values, check=check, text=text, reason=reason)
    if not reason.strip():
        return _render(request, values, check=check, text=text, error="Give a reason for the change.",
                       status_code=422)
    try:
        with write_session() as s:
            res = _policy_publish(s, who, text, reason.strip())
    except (PolicyFileError, DomainError) as exc:
        msg = exc.message if isinstance(exc, DomainError) else str(exc)
        return _render(request, values, check=check, text=text, reason=reason, error=msg, status_code=422)
    done = {"pending": "request", "published": "publish"}.get(res["status"], "unchanged")
    return redirect(f"/governance/policy?done={done}")


@router.post("/governance/policy/form", response_class=HTMLResponse)
async def form_post(request: Request, who: PolicyEditor) -> Response:
    form = await request.form()
    values, action, reason, base_version = _submitted(form)
    return await run_in_threadpool(_handle, request, who, values, action, reason, base_version)
