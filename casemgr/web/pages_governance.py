"""/governance/policy and /governance/rules: edit, validate (errors at their line), diff against the active
version, simulate, publish with a reason, history and rollback. Role `governance` only (access.py).

The page shows the candidate text with line numbers and marks every line a validation problem points at.
Nothing is stored until Publish; an invalid candidate can never be published (the services validate again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.policyfile import PolicyFileError, Problem
from casemgr.users.service import Principal
from casemgr.web.deps import page
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)

PolicyEditor = Annotated[Principal, Depends(page("policy.publish"))]
RulesEditor = Annotated[Principal, Depends(page("rules.publish"))]
PolicyViewer = Annotated[Principal, Depends(page("policy.read"))]
SIM_LAST = 300


@dataclass
class Check:
    problems: list[Problem]
    diff: str
    simulation: dict[str, Any] | None
    sim_error: str | None = None
    words: list[str] | None = None  # the diff in words (AI policy)


def _problems(exc: Exception) -> list[Problem]:
    if isinstance(exc, PolicyFileError):
        return list(exc.problems)
    return [Problem("candidate", 0, str(exc))]


def numbered(text: str, problems: list[Problem], file: str | None = None) -> list[dict[str, Any]]:
    """The candidate's lines with the problems that point at each (file-less problems match any file)."""
    by_line: dict[int, list[str]] = {}
    for p in problems:
        if file is None or not p.file or p.file == file or p.file.endswith("/" + file):
            by_line.setdefault(p.line, []).append(p.message)
    return [{"n": i, "text": line, "problems": by_line.get(i, [])} for i, line in enumerate(text.split("\n"), start=1)]


# ---------------------------------------------------------------- AI policy


def _policy_active(session: Session) -> tuple[str, str | None]:
    from casemgr.governance import store
    from casemgr.governance.policy import policy_path

    row = store.active_row(session)
    if row is not None:
        return row.content, row.version
    try:
        return policy_path().read_text(encoding="utf-8"), None
    except OSError:
        return "", None


def _policy_check(text: str, active_text: str, simulate: bool) -> Check:
    from casemgr.governance import lifecycle
    from casemgr.governance.policy import FILE_NAME, parse_policy
    from casemgr.governance.store import text_diff

    diff = text_diff(active_text, text)
    try:
        parse_policy(text, FILE_NAME)
    except PolicyFileError as exc:
        return Check(_problems(exc), diff, None)
    from casemgr.governance.policy_words import in_words

    sim, sim_err, words = None, None, None
    with read_session() as s:
        try:
            changes = lifecycle.diff(s, text)["changes"]
            words = in_words(changes)
            if simulate:
                sim = lifecycle.simulate(s, text, last_n=SIM_LAST)
                sim["changes"] = changes
        except Exception as exc:  # noqa: BLE001 - a failed preview must not lose the editor's text
            sim_err = f"simulation failed: {exc}"
    return Check([], diff, sim, sim_err, words)


def _policy_publish(session: Session, who: Principal, text: str, reason: str) -> Any:
    """Four eyes: a change request (published at once only with single_person_publish)."""
    from casemgr.governance import lifecycle

    return lifecycle.request_publish(session, text, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                     reason=reason)


def _four_eyes(who: Principal, kind: str) -> dict[str, Any]:
    """The pending change requests of this kind (with what `who` may do) and the four-eyes setting."""
    from casemgr.documents.changes import single_person_publish
    from casemgr.governance.changes_api import pending_for

    with read_session() as s:
        return {"pending": pending_for(s, who, kind), "single_person": single_person_publish()}


def _policy_review() -> dict[str, Any]:
    from casemgr.governance.policy_review import review_state

    with read_session() as s:
        return review_state(s)


# A draft is a whole document: submitted over a newer version it would silently undo that version's changes. The
# pages send the version they were opened on (hidden base_version); scripted posts without it are not checked.
STALE = ("The version in force changed since you opened this page (another change was published or rolled back). "
         "Your text is kept below: compare it with the version now in force and submit again.")
NOTICES = {"reviewed": "Review recorded.","publish": "Published: the new version is active.", "rollback": "Rolled back.",
           "request": "Submitted for approval: a different governance lead must approve it before it is published.",
           "approve": "Approved and published.", "reject": "Change request rejected.",
           "unchanged": "Nothing to change: that version is already in force."}


def _policy_rollback(session: Session, who: Principal, version: str, reason: str) -> Any:
    from casemgr.governance import lifecycle

    return lifecycle.rollback(session, actor=who.actor, roles=who.roles, reason=reason, to=version)


def _policy_page(request: Request, *, text: str | None = None, check: Check | None = None, error: str | None = None,
                 reason: str = "", notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    from casemgr.governance import store
    from casemgr.governance.policy import FILE_NAME, content_version
    from casemgr.learning.activation import history as model_history

    with read_session() as s:
        active_text, active_version = _policy_active(s)
        history = store.history(s, 50)
        models = model_history(s, 20)  # the model versions in force, beside the policy's (issue 21)
    cand = active_text if text is None else text
    ctx = {"kind": "policy", "title": "AI policy", "action": "/governance/policy", "files": [FILE_NAME],
           "base_version": content_version(active_text),
           "file": FILE_NAME, "text": cand, "active_version": active_version or "file (never published)",
           "history": history, "check": check, "error": error, "reason": reason, "notice": notice,
           "lines": numbered(cand, check.problems if check else [], None), "flagged": _flagged(),
           "policy_review": _policy_review(), "models": models, **_four_eyes(request.state.principal, "ai-policy")}
    return render(request, "governance.html", ctx, status_code=status_code)


@router.get("/governance/policy", response_class=HTMLResponse)
def policy_page(request: Request, who: PolicyEditor, done: str | None = None) -> Response:
    return _policy_page(request, notice=NOTICES.get(done or ""))


@router.post("/governance/policy", response_class=HTMLResponse)
def policy_post(request: Request, who: PolicyEditor, text: Annotated[str, Form(max_length=200_000)],
                action: Annotated[str, Form(max_length=20)] = "check",
                reason: Annotated[str, Form(max_length=2000)] = "",
                base_version: Annotated[str, Form(max_length=80)] = "") -> Response:
    from casemgr.governance.policy import content_version

    text = text.replace("\r\n", "\n")
    with read_session() as s:
        active_text, _ = _policy_active(s)
    if action == "publish" and base_version and base_version != content_version(active_text):
        return _policy_page(request, text=text, reason=reason, error=STALE, status_code=409)
    check = _policy_check(text, active_text, simulate=action in ("simulate", "publish"))
    if action != "publish" or check.problems:
        return _policy_page(request, text=text, check=check, reason=reason, status_code=422 if check.problems else 200)
    if not reason.strip():
        return _policy_page(request, text=text, check=check, error="Give a reason for publishing.", status_code=422)
    try:
        with write_session() as s:
            res = _policy_publish(s, who, text, reason.strip())
    except (PolicyFileError, DomainError, ValueError) as exc:
        msg = exc.message if isinstance(exc, DomainError) else str(exc)
        return _policy_page(request, text=text, check=check, error=msg, reason=reason, status_code=422)
    done = {"pending": "request", "published": "publish"}.get(res["status"], "unchanged")
    return redirect(f"/governance/policy?done={done}")


@router.post("/governance/policy/rollback", response_class=HTMLResponse)
def policy_rollback(request: Request, who: PolicyEditor, version: Annotated[str, Form(max_length=80)],
                    reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        with write_session() as s:
            _policy_rollback(s, who, version, reason.strip() or f"rollback to {version}")
    except (PolicyFileError, DomainError, ValueError) as exc:
        msg = exc.message if isinstance(exc, DomainError) else str(exc)
        return _policy_page(request, error=msg, status_code=422)
    return redirect("/governance/policy?done=rollback")


@router.post("/governance/policy/review", response_class=HTMLResponse)
def policy_review(request: Request, who: PolicyEditor, comment: Annotated[str, Form(max_length=2000)] = "",
                  next_review_by: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Record that the policy in force was reviewed (review_by enforcement, issue 21)."""
    from datetime import date

    from casemgr.governance.policy_review import record_review

    try:
        nxt = date.fromisoformat(next_review_by)
    except ValueError:
        return _policy_page(request, error="Give the next review date as YYYY-MM-DD.", status_code=422)
    try:
        with write_session() as s:
            record_review(s, actor=who.actor, roles=who.roles, comment=comment, next_review_by=nxt)
    except DomainError as exc:
        return _policy_page(request, error=exc.message, status_code=exc.status_code)
    return redirect("/governance/policy?done=reviewed")


@router.get("/governance/owners", response_class=HTMLResponse)
def owners_page(request: Request, who: PolicyViewer) -> Response:
    """Owner matrix (issue 21): decision kind x owner role x people holding it today, gaps first."""
    from casemgr.governance.owners import owner_matrix

    with read_session() as s:
        matrix = owner_matrix(s)
    return render(request, "owners.html", {"m": matrix})


# ---------------------------------------------------------------- rules


def _rules_active() -> tuple[Any, str | None]:
    from casemgr.rules import store
    from casemgr.rules.schema import RuleSource
    from casemgr.rules.service import files_dir

    with read_session() as s:
        row = store.active_row(s)
        if row is not None:
            return store.source_of(row), row.version
    return RuleSource.from_path(files_dir()), None


def _rules_page(request: Request, *, file: str | None, text: str | None = None, check: Check | None = None,
                error: str | None = None, reason: str = "", notice: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    from casemgr.rules import store

    source, version = _rules_active()
    files = sorted(source.files)
    if file not in source.files:
        file = files[0] if files else "rules.yaml"
    cand = source.files.get(file, "") if text is None else text
    with read_session() as s:
        history = store.history(s, 50)
    ctx = {"kind": "rules", "title": "Routing rules", "action": "/governance/rules", "files": files, "file": file,
           "base_version": source.version,
           "text": cand, "active_version": version or f"files on disk ({source.version})", "history": history,
           "check": check, "error": error, "reason": reason, "notice": notice,
           "lines": numbered(cand, check.problems if check else [], file), "flagged": _flagged(),
           **_four_eyes(request.state.principal, "rules")}
    return render(request, "governance.html", ctx, status_code=status_code)


def _flagged() -> list[Any]:
    """Admins who changed their own roles with no second admin (issue 18): whoever governs policy sees it."""
    from casemgr.users.service import flagged_role_changes

    with read_session() as s:
        return flagged_role_changes(s)


def _rules_check(file: str, text: str, simulate: bool) -> tuple[Check, Any]:
    from casemgr.rules import store
    from casemgr.rules.schema import RuleSource
    from casemgr.rules.simulate import simulate as run_sim

    active, _ = _rules_active()
    candidate = RuleSource(files=dict(sorted({**active.files, file: text}.items())))
    diff = store.diff_sources(active, candidate)
    try:
        store.validate_source(candidate)
    except Exception as exc:  # noqa: BLE001 - PolicyFileError or CompileError: both are shown to the editor
        return Check(_problems(exc), diff, None), candidate
    sim, sim_err = None, None
    if simulate:
        try:
            sim = run_sim(candidate, SIM_LAST)
        except Exception as exc:  # noqa: BLE001
            sim_err = f"simulation failed: {exc}"
    return Check([], diff, sim, sim_err), candidate


@router.get("/governance/rules", response_class=HTMLResponse)
def rules_page(request: Request, who: RulesEditor, file: Annotated[str | None, Query(max_length=200)] = None,
               done: str | None = None) -> Response:
    return _rules_page(request, file=file, notice=NOTICES.get(done or ""))


@router.post("/governance/rules", response_class=HTMLResponse)
def rules_post(request: Request, who: RulesEditor, text: Annotated[str, Form(max_length=500_000)],
               file: Annotated[str, Form(max_length=200)], action: Annotated[str, Form(max_length=20)] = "check",
               reason: Annotated[str, Form(max_length=2000)] = "",
               base_version: Annotated[str, Form(max_length=80)] = "") -> Response:
    from casemgr.rules import store

    text = text.replace("\r\n", "\n")
    active, _ = _rules_active()
    if file not in active.files:
        return _rules_page(request, file=None, error=f"unknown rules file {file!r}", status_code=422)
    if action == "publish" and base_version and base_version != active.version:
        return _rules_page(request, file=file, text=text, reason=reason, error=STALE, status_code=409)
    check, candidate = _rules_check(file, text, simulate=action in ("simulate", "publish"))
    if action != "publish" or check.problems:
        return _rules_page(request, file=file, text=text, check=check, reason=reason,
                           status_code=422 if check.problems else 200)
    if not reason.strip():
        return _rules_page(request, file=file, text=text, check=check, error="Give a reason for publishing.",
                           status_code=422)
    from casemgr.documents import changes

    try:
        with write_session() as s:
            row = changes.request(s, store.KIND, candidate.files, actor=who.actor, user_id=who.user_id,
                                  roles=who.roles, reason=reason.strip())
    except changes.NothingToChange:
        return redirect(f"/governance/rules?file={quote(file)}&done=unchanged")
    except Exception as exc:  # noqa: BLE001 - store errors are shown; nothing was committed
        msg = exc.message if isinstance(exc, DomainError) else str(exc)
        return _rules_page(request, file=file, text=text, check=check, error=msg, reason=reason, status_code=422)
    # Once approved, every process's rules service notices the new active version within a second (hot reload).
    done = "publish" if row.status == "published" else "request"
    return redirect(f"/governance/rules?file={quote(file)}&done={done}")


@router.post("/governance/rules/rollback", response_class=HTMLResponse)
def rules_rollback(request: Request, who: RulesEditor, version: Annotated[str, Form(max_length=80)],
                   reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    from casemgr.rules import store

    try:
        with write_session() as s:
            store.rollback(s, to=version, author=who.actor, reason=reason.strip() or None)
    except Exception as exc:  # noqa: BLE001
        return _rules_page(request, file=None, error=str(exc), status_code=422)
    return redirect("/governance/rules?done=rollback")
