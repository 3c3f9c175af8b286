"""JSON API for routing rules: inspect, validate, evaluate, simulate, publish, roll back (/api/rules…)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from casemgr.errors import NotFound, ValidationFailed
from casemgr.users.service import Principal
from casemgr.web.deps import AppRuntime, ReadSession, WriteSession, require

router = APIRouter(prefix="/api/rules", tags=["rules"])
PolicyReader = Annotated[Principal, Depends(require("policy.read"))]
RulesPublisher = Annotated[Principal, Depends(require("rules.publish"))]
MAX_FILES = 20
MAX_FILE_CHARS = 500_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesIn(_In):
    """A complete rule set: {file name: YAML text}."""

    files: dict[str, str] = Field(min_length=1, max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for name, text in v.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}\.ya?ml", name):
                raise ValueError(f"bad file name {name!r}")
            if len(text) > MAX_FILE_CHARS:
                raise ValueError(f"{name} is longer than {MAX_FILE_CHARS} characters")
        return v


class SimulateIn(FilesIn):
    last: int = Field(default=500, ge=1, le=10_000)


class PublishIn(FilesIn):
    reason: str = Field(min_length=1, max_length=2000)


class RollbackIn(_In):
    to: str | None = Field(default=None, max_length=80)
    reason: str | None = Field(default=None, max_length=2000)


class EvaluateIn(_In):
    facts: dict[str, Any]


def _problems_422(exc: Exception) -> ValidationFailed:
    problems = [p.as_dict() for p in getattr(exc, "problems", [])] or [{"message": str(exc)}]
    return ValidationFailed("invalid rules: nothing was changed", problems=problems)


def _source(body: FilesIn) -> Any:
    from casemgr.rules.schema import RuleSource

    return RuleSource(files=dict(sorted(body.files.items())))


def _row(r: Any) -> dict[str, Any]:
    return {"id": r.id, "version": r.version, "active": r.is_active, "author": r.author, "reason": r.reason,
            "created_at": r.created_at.isoformat(), "files": sorted((r.files or {}).keys())}


@router.get("")
def rules_status(session: ReadSession, rt: AppRuntime, _: PolicyReader) -> dict[str, Any]:
    """The version this process evaluates with, the published versions, and the active files."""
    from casemgr.rules import store

    svc = rt.rules
    crs = svc.compiled
    return {
        "running_version": crs.version,
        "published_active": store.active_version(session),
        "last_reload_error": svc.last_error,
        "files": crs.ruleset.source.files,
        "versions": [_row(r) for r in store.history(session, 50)],
    }


@router.get("/versions/{version}")
def rules_version(version: str, session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    from casemgr.rules import store

    for r in store.history(session, 1000):
        if r.version == version or str(r.id) == version:
            return {**_row(r), "files": r.files, "diff": r.diff}
    raise NotFound("no such rules version")


def _gate(body: FilesIn) -> None:
    """Refuse unsafe regexes (422, file:line) before any rule is parsed or compiled (issue 18)."""
    from casemgr.rules.regex_gate import scan_files

    problems = scan_files(body.files)
    if problems:
        raise ValidationFailed("unsafe regular expression in the rules: nothing was changed",
                               problems=[p.as_dict() for p in problems])


@router.post("/validate")
def rules_validate(body: FilesIn, _: PolicyReader) -> dict[str, Any]:
    from casemgr.rules import sandbox

    _gate(body)
    source = _source(body)
    # Untrusted input: compiled and registered in the engine in a child process with a time limit.
    outcome, value = sandbox.run("validate", source.files)
    if outcome == "problems":
        return {"ok": False, "problems": value}
    if outcome == "error":
        return {"ok": False, "problems": [{"message": value}]}
    return {"ok": True, "version": source.version, "problems": []}


@router.post("/evaluate")
def rules_evaluate(body: EvaluateIn, rt: AppRuntime, _: PolicyReader) -> dict[str, Any]:
    return rt.rules.evaluate(body.facts).model_dump(mode="json")


@router.post("/simulate")
def rules_simulate(body: SimulateIn, rt: AppRuntime, _: PolicyReader) -> dict[str, Any]:
    from casemgr.rules import sandbox
    from casemgr.rules.simulate import last_cases_facts

    _gate(body)
    current = rt.rules.compiled.ruleset.source.files
    # The candidate is compiled and evaluated in a child process with a time limit; the cases are read here.
    outcome, value = sandbox.run("simulate", current, _source(body).files, last_cases_facts(body.last))
    if outcome == "problems":
        raise ValidationFailed("invalid rules: nothing was changed", problems=value)
    if outcome == "error":
        raise ValidationFailed(f"the rules could not be simulated: {value}")
    return value  # type: ignore[no-any-return]


@router.post("/publish")
def rules_publish(body: PublishIn, session: WriteSession, principal: RulesPublisher) -> dict[str, Any]:
    from casemgr.rules import sandbox, store

    _gate(body)
    # Checked in the sandbox first, so a rule set that hangs the engine never reaches this process.
    outcome, value = sandbox.run("validate", _source(body).files)
    if outcome != "ok":
        raise ValidationFailed("invalid rules: nothing was changed",
                               problems=value if outcome == "problems" else [{"message": value}])
    from casemgr.documents import changes

    # Four eyes (issue 21): a change request that a different governance lead approves (/api/changes/{id}).
    try:
        row = changes.request(session, store.KIND, _source(body).files, actor=principal.actor,
                              user_id=principal.user_id, roles=principal.roles, reason=body.reason)
    except changes.NothingToChange as exc:
        return {"version": exc.details["version"], "id": None, "changed": False, "diff": "", "status": "unchanged"}
    except Exception as exc:
        if getattr(exc, "problems", None):
            raise _problems_422(exc) from None
        raise
    return {"version": row.version, "id": row.published_version_id, "changed": row.status == "published",
            "diff": row.diff or "", "status": row.status, "request": changes.as_dict(row)}


@router.post("/rollback")
def rules_rollback(body: RollbackIn, session: WriteSession, principal: RulesPublisher) -> dict[str, Any]:
    from casemgr.rules import store

    try:
        res = store.rollback(session, to=body.to, author=principal.actor, reason=body.reason)
    except store.RulesStoreError as exc:
        raise ValidationFailed(str(exc)) from None
    except Exception as exc:
        if getattr(exc, "problems", None):
            raise _problems_422(exc) from None
        raise
    return {"version": res.version, "id": res.id, "changed": res.changed}
