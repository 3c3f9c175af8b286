"""Model view and process governance pages (issue 22).

Model view (`process.read`): /process/models, /process/model/{case_type}?version=&compare= (server-rendered
SVG inline) and GET /api/casetypes/{case_type}/model.svg. Process owners (`process.publish`, the governance
lead): /governance/processes edits SLAs per stage, the case-types YAML and the SOP files; every change is a
change request (four eyes) published through casemgr.documents, and can be rolled back.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from casemgr.casetypes import lifecycle
from casemgr.casetypes.documents import CASE_TYPES_FILE
from casemgr.casetypes.model import model_view
from casemgr.db import read_session, write_session
from casemgr.documents import changes
from casemgr.documents.enums import DocumentKind
from casemgr.errors import DomainError
from casemgr.policyfile import PolicyFileError, Problem
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, page, require
from casemgr.web.pages_common import redirect, render
from casemgr.web.paging import MAX_LIMIT

router = APIRouter(tags=["processes"])
Reader = Annotated[Principal, Depends(require("process.read"))]
PageReader = Annotated[Principal, Depends(page("process.read"))]
Owner = Annotated[Principal, Depends(require("process.publish"))]
PageOwner = Annotated[Principal, Depends(page("process.publish"))]
Ref = Annotated[str | None, Query(max_length=80)]
MAX_TEXT = 500_000
NOTICES = {"request": "Submitted: a second governance lead must approve it before it is in force.",
           "publish": "Published: new cases use it; running cases keep their version.",
           "rollback": "Rolled back: new cases use the earlier version; running cases keep theirs.",
           "unchanged": "Nothing to change: that version is already in force.",
           "approve": "Approved and published.", "reject": "Rejected."}


# ---------------------------------------------------------------- model view


RequestId = Annotated[int | None, Query(ge=1, le=2**62)]


@router.get("/api/casetypes/{case_type}/model.svg", response_class=Response)
def model_svg(case_type: str, session: ReadSession, _: Reader, version: Ref = None, compare: Ref = None,
              request: RequestId = None) -> Response:
    view = model_view(session, case_type, version=version, compare=compare, request=request)
    return Response(view.svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.get("/api/casetypes/versions")
def list_versions(session: ReadSession, _: Reader, kind: Annotated[str, Query(max_length=30)] = "case-types",
                  limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> list[dict[str, Any]]:
    """Versions newest first (numbers count from the oldest of the `limit` returned)."""
    return [{k: v for k, v in x.items() if k != "diff"} for x in lifecycle.versions(session, kind, limit)]


@router.get("/process/models", response_class=HTMLResponse, include_in_schema=False)
def models_page(request: Request, who: PageReader) -> Response:
    from casemgr.casetypes.registry import get_registry
    from casemgr.casetypes.versions import in_force_version, label

    with read_session() as s:
        v = in_force_version(s)
        ctx = {"types": list(get_registry().case_types.values()), "version_label": label(s, v),
               "versions": lifecycle.versions(s, DocumentKind.CASE_TYPES)}
    return render(request, "process_models.html", ctx)


@router.get("/process/model/{case_type}", response_class=HTMLResponse, include_in_schema=False)
def model_page(request: Request, case_type: str, who: PageReader, version: Ref = None, compare: Ref = None,
               case: Annotated[int | None, Query(ge=1, le=2**62)] = None,
               change: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
    """`change`: a pending case-types change request, drawn against the version in force (for the approver)."""
    with read_session() as s:
        from casemgr.casetypes.versions import in_force_version

        view = model_view(s, case_type, version=version or None, compare=compare or None, request=change)
        versions = lifecycle.versions(s, DocumentKind.CASE_TYPES)
        in_force = in_force_version(s)
    return render(request, "process_model.html", {"view": view, "versions": versions, "case_id": case,
                                                  "change_id": change, "in_force": in_force,
                                                  "can_edit": who.has_any({changes.LEAD_ROLE})})


# ---------------------------------------------------------------- JSON API for process owners


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(default="case-types", max_length=30)
    files: dict[str, Annotated[str, Field(max_length=MAX_TEXT)]] = Field(max_length=600)
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/api/casetypes/check")
def api_check(body: PublishIn, session: ReadSession, _: Owner) -> dict[str, Any]:
    problems = lifecycle.check(body.kind, body.files)
    return {"ok": not problems, "problems": [p.__dict__ for p in problems],
            "diff": lifecycle.diff(session, body.kind, body.files) if not problems else ""}


@router.post("/api/casetypes/publish")
def api_publish(body: PublishIn, session: WriteSession, who: Owner) -> dict[str, Any]:
    """A change request (four eyes): approve with POST /api/changes/{id}/approve as another lead. An invalid
    candidate raises PolicyFileError, which web/errors.py answers with 422 and its file:line problems."""
    return lifecycle.request_publish(session, body.kind, body.files, actor=who.actor, user_id=who.user_id,
                                     roles=who.roles, reason=body.reason)


# ---------------------------------------------------------------- governance pages


def _problems(exc: Exception) -> list[Problem]:
    return list(exc.problems) if isinstance(exc, PolicyFileError) else [Problem("candidate", 0, str(exc))]


def _with_model_links(session: Session, row: dict[str, Any]) -> dict[str, Any]:
    """A pending case-types request links the model view of each type it changes, drawn before approval."""
    if row["kind"] != DocumentKind.CASE_TYPES:
        return row
    from casemgr.casetypes.model import changed_types

    try:
        names = changed_types(session, int(row["id"]))
    except (DomainError, PolicyFileError):
        names = []
    return {**row, "model_links": [(n, f"/process/model/{n}?change={row['id']}") for n in names]}


def _page(request: Request, who: Principal, *, notice: str | None = None, error: str | None = None,
          yaml_text: str | None = None, sop_file: str | None = None, sop_text: str | None = None,
          check: dict[str, Any] | None = None, reason: str = "", status_code: int = 200) -> Response:
    from casemgr.casetypes.modeldiff import sla_text
    from casemgr.casetypes.registry import get_registry
    from casemgr.casetypes.versions import in_force_version, label
    from casemgr.governance.changes_api import pending_for

    with read_session() as s:
        in_force = lifecycle.in_force_files(s, DocumentKind.CASE_TYPES)
        sops = lifecycle.in_force_files(s, DocumentKind.SOP)
        chosen = sop_file if sop_file and (sop_file in sops or sop_text is not None) else (sorted(sops)[0] if sops else "")
        ctx: dict[str, Any] = {
            "types": list(get_registry().case_types.values()), "sla_text": sla_text,
            "version_label": label(s, in_force_version(s)),
            "yaml_text": yaml_text if yaml_text is not None else in_force.get(CASE_TYPES_FILE, ""),
            "sop_files": sorted(sops), "sop_file": chosen,
            "versions": lifecycle.versions(s, DocumentKind.CASE_TYPES, 20),
            "sop_versions": lifecycle.versions(s, DocumentKind.SOP, 20),
            "pending": [_with_model_links(s, r) for k in (DocumentKind.CASE_TYPES, DocumentKind.SOP)
                        for r in pending_for(s, who, k)],
            "single_person": changes.single_person_publish(),
        }
        ctx["sop_text"] = sop_text if sop_text is not None else sops.get(chosen, "")
    ctx.update({"notice": notice, "error": error, "check": check, "reason": reason})
    return render(request, "processes.html", ctx, status_code=status_code)


@router.get("/governance/processes", response_class=HTMLResponse, include_in_schema=False)
def processes_page(request: Request, who: PageOwner, done: Annotated[str | None, Query(max_length=20)] = None,
                   sop: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    return _page(request, who, notice=NOTICES.get(done or ""), sop_file=sop)


def _submit(request: Request, who: Principal, kind: str, files: dict[str, str], reason: str,
            **again: Any) -> Response:
    """Check, then submit as a change request; problems and refusals are shown with the candidate kept."""
    problems = lifecycle.check(kind, files)
    if problems:
        return _page(request, who, check={"kind": kind, "problems": problems, "diff": ""}, reason=reason,
                     status_code=422, **again)
    if not reason.strip():
        return _page(request, who, error="Give a reason for the change.", reason=reason, status_code=422, **again)
    try:
        with write_session() as s:
            r = lifecycle.request_publish(s, kind, files, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                          reason=reason.strip())
    except changes.NothingToChange:
        return redirect("/governance/processes?done=unchanged")
    except (DomainError, PolicyFileError) as exc:
        msg = exc.message if isinstance(exc, DomainError) else str(exc)
        return _page(request, who, error=msg, reason=reason, status_code=getattr(exc, "status_code", 422), **again)
    return redirect(f"/governance/processes?done={'publish' if r['status'] == 'published' else 'request'}")


def _check_only(request: Request, who: Principal, session: Session, kind: str, files: dict[str, str], reason: str,
                **again: Any) -> Response:
    problems = lifecycle.check(kind, files)
    diff = "" if problems else lifecycle.diff(session, kind, files)
    return _page(request, who, check={"kind": kind, "problems": problems, "diff": diff}, reason=reason,
                 status_code=422 if problems else 200, **again)


@router.post("/governance/processes/sla", response_class=HTMLResponse, include_in_schema=False)
async def sla_post(request: Request, who: PageOwner) -> Response:
    """One case type's SLA hours per stage (inputs `sla_<stage>`), submitted as a case-types change request."""
    from casemgr.casetypes.edit import set_sla_hours

    form = await request.form()
    case_type = str(form.get("case_type") or "")[:60]
    reason = str(form.get("reason") or "")[:2000]
    hours: dict[str, float] = {}
    for key, value in form.items():
        if key.startswith("sla_") and str(value).strip():
            try:
                hours[key[4:]] = float(str(value).strip())
            except ValueError:
                return _page(request, who, error=f"SLA hours for {key[4:]!r} must be a number", reason=reason,
                             status_code=422)
    with read_session() as s:
        text = lifecycle.in_force_files(s, DocumentKind.CASE_TYPES)[CASE_TYPES_FILE]
    try:
        candidate = set_sla_hours(text, case_type, hours)
    except DomainError as exc:
        return _page(request, who, error=exc.message, reason=reason, status_code=exc.status_code)
    if candidate == text:
        return redirect("/governance/processes?done=unchanged")
    return _submit(request, who, DocumentKind.CASE_TYPES, {CASE_TYPES_FILE: candidate}, reason,
                   yaml_text=candidate)


@router.post("/governance/processes/case-types", response_class=HTMLResponse, include_in_schema=False)
def case_types_post(request: Request, who: PageOwner, text: Annotated[str, Form(max_length=MAX_TEXT)],
                    action: Annotated[str, Form(max_length=20)] = "check",
                    reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    files = {CASE_TYPES_FILE: text.replace("\r\n", "\n")}
    if action != "publish":
        with read_session() as s:
            return _check_only(request, who, s, DocumentKind.CASE_TYPES, files, reason, yaml_text=files[CASE_TYPES_FILE])
    return _submit(request, who, DocumentKind.CASE_TYPES, files, reason, yaml_text=files[CASE_TYPES_FILE])


@router.post("/governance/processes/sop", response_class=HTMLResponse, include_in_schema=False)
def sop_post(request: Request, who: PageOwner, file: Annotated[str, Form(max_length=200)],
             text: Annotated[str, Form(max_length=MAX_TEXT)], action: Annotated[str, Form(max_length=20)] = "check",
             reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    with read_session() as s:
        files = lifecycle.in_force_files(s, DocumentKind.SOP)
        files[file] = text.replace("\r\n", "\n")
        if action != "publish":
            return _check_only(request, who, s, DocumentKind.SOP, files, reason, sop_file=file, sop_text=files[file])
    return _submit(request, who, DocumentKind.SOP, files, reason, sop_file=file, sop_text=files[file])


@router.post("/governance/processes/rollback", response_class=HTMLResponse, include_in_schema=False)
def rollback_post(request: Request, who: PageOwner, kind: Annotated[str, Form(max_length=30)],
                  version: Annotated[str, Form(max_length=80)],
                  reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        with write_session() as s:
            lifecycle.rollback(s, kind, actor=who.actor, roles=who.roles, reason=reason.strip() or None, to=version)
    except DomainError as exc:
        return _page(request, who, error=exc.message, status_code=exc.status_code)
    except PolicyFileError as exc:
        return _page(request, who, error=str(exc), status_code=422)
    return redirect(f"/governance/processes?done=rollback&kind={quote(kind)}")
