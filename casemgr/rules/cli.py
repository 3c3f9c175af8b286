"""`casemgr rules …` (check, publish, rollback, history, simulate, eval) and `casemgr bench rules`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from casemgr.policyfile import PolicyFileError, Problem

app = typer.Typer(help="Routing rules: validate, publish, roll back, preview impact.", no_args_is_help=True)


def _default_dir() -> Path:
    from casemgr.rules.service import files_dir

    return files_dir()


def _problems(exc: Exception) -> list[Problem]:
    return list(getattr(exc, "problems", [])) or [Problem("?", 0, str(exc))]


def _load_checked(path: Path):  # type: ignore[no-untyped-def]
    """Validate PATH completely (schema, cross-file checks, compile, engine registration)."""
    from casemgr.rules.schema import RuleSource
    from casemgr.rules.store import validate_source

    source = RuleSource.from_path(path)
    validate_source(source)
    return source


@app.command("check")
def check(
    path: Path = typer.Argument(None, help="Rules file or directory (default: <policies>/rules)."),
    as_json: bool = typer.Option(False, "--json", help="Print problems as JSON."),
) -> None:
    """Validate rules files; print every problem with file:line and rule name; exit 1 if any."""
    from casemgr.rules.compiler import CompileError

    path = path or _default_dir()
    try:
        source = _load_checked(path)
    except (PolicyFileError, CompileError) as exc:
        probs = _problems(exc)
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": [p.as_dict() for p in probs]}))
        else:
            for p in probs:
                typer.echo(str(p), err=True)
            typer.echo(f"{len(probs)} problem(s) in {path}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"ok": True, "version": source.version, "files": sorted(source.files)}))
    else:
        typer.echo(f"OK {path}: {len(source.files)} file(s), version {source.version}")


@app.command("publish")
def publish(
    path: Path = typer.Argument(None, help="Rules file or directory (default: <policies>/rules)."),
    author: str = typer.Option(..., help="A user with the governance role (recorded as the request's author)."),
    reason: str = typer.Option(..., help="Why (recorded)."),
) -> None:
    """Validate a rule set and submit it as a change request (four eyes, issue 21): a different governance lead
    approves it with `casemgr policy approve ID --author USER`, then all workers switch to it within about a
    second. Published at once only with CASEMGR_SINGLE_PERSON_PUBLISH. Exit 1: invalid or refused."""
    from casemgr.db import write_session
    from casemgr.documents import changes
    from casemgr.errors import DomainError
    from casemgr.governance.cli import _user
    from casemgr.rules import store
    from casemgr.rules.compiler import CompileError
    from casemgr.rules.schema import RuleSource

    path = path or _default_dir()
    actor, user_id, roles = _user(author)
    try:
        source = RuleSource.from_path(path)
        with write_session() as s:
            row = changes.request(s, store.KIND, source.files, actor=actor, user_id=user_id, roles=roles,
                                  reason=reason)
            status, request_id, version, diff = row.status, row.id, row.version, row.diff or ""
            published_id = row.published_version_id
    except (PolicyFileError, CompileError) as exc:
        for p in _problems(exc):
            typer.echo(str(p), err=True)
        typer.echo("not published; the active rule set is unchanged", err=True)
        raise typer.Exit(1) from None
    except changes.NothingToChange as exc:
        typer.echo(f"version {exc.details['version']} is already active; nothing published")
        return
    except (DomainError, store.RulesStoreError) as exc:
        typer.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        raise typer.Exit(1) from None
    typer.echo(diff.rstrip() or "(no previous version)")
    if status == "published":
        typer.echo(f"published rules version {version} (id {published_id}; single-person publish)")
    else:
        typer.echo(f"change request {request_id} for rules version {version} is waiting for a second governance "
                   f"lead: casemgr policy approve {request_id} --author USER")


@app.command("rollback")
def rollback(
    to: str = typer.Option(None, "--to", help="Version hash (or prefix) or id; default: the previous one."),
    author: str = typer.Option("cli", help="Who rolls back (recorded)."),
    reason: str = typer.Option(None, help="Why (recorded)."),
) -> None:
    """Re-activate an earlier published rule set."""
    from casemgr.db import write_session
    from casemgr.rules import store
    from casemgr.rules.compiler import CompileError

    try:
        with write_session() as s:
            res = store.rollback(s, to=to, author=author, reason=reason)
    except (PolicyFileError, CompileError) as exc:
        for p in _problems(exc):
            typer.echo(str(p), err=True)
        typer.echo("rollback refused: that version is no longer valid", err=True)
        raise typer.Exit(1) from None
    except store.RulesStoreError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"active rules version is now {res.version}")


@app.command("history")
def history(as_json: bool = typer.Option(False, "--json")) -> None:
    """Published rule set versions, newest first."""
    from casemgr.db import read_session
    from casemgr.rules import store

    with read_session() as s:
        rows = store.history(s)
    items = [
        {"id": r.id, "version": r.version, "active": r.is_active, "author": r.author, "reason": r.reason,
         "created_at": r.created_at.isoformat()}
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(items))
        return
    for i in items:
        mark = "*" if i["active"] else " "
        typer.echo(f"{mark} {i['id']:>4} {i['version']} {str(i['created_at'])[:19]} {i['author']}: {i['reason']}")


@app.command("simulate")
def simulate(
    path: Path = typer.Argument(..., help="Candidate rules file or directory."),
    last: int = typer.Option(100, "--last", help="How many of the most recent cases to re-evaluate."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Preview: how many of the last N cases would route differently under the candidate rules."""
    from casemgr.rules.compiler import CompileError
    from casemgr.rules.schema import RuleSource
    from casemgr.rules.simulate import simulate as run

    try:
        report = run(RuleSource.from_path(path), last)
    except (PolicyFileError, CompileError) as exc:
        for p in _problems(exc):
            typer.echo(str(p), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(
        f"{report['route_changed']} of {report['evaluated']} cases would route differently "
        f"(current {report['current_version']} -> candidate {report['candidate_version']}); "
        f"{report['priority_changed']} priority changes, {report['tasks_changed']} task-list changes"
    )
    for m in report["queue_moves"]:
        typer.echo(f"  queue    {m['from']} -> {m['to']}: {m['count']}")
    for m in report["priority_moves"]:
        typer.echo(f"  priority {m['from']} -> {m['to']}: {m['count']}")


@app.command("eval")
def eval_facts(
    facts: str = typer.Argument(..., help='Facts as JSON, e.g. \'{"type":"contract","amount":20000}\'.'),
    path: Path = typer.Option(None, help="Evaluate with these files instead of the active rule set."),
) -> None:
    """Evaluate one fact set and print the Decision (with every fired rule) as JSON."""
    from casemgr.rules.compiler import compile_ruleset
    from casemgr.rules.engine import DurableEngine
    from casemgr.rules.schema import RuleSource, load_ruleset
    from casemgr.rules.service import evaluate

    data = json.loads(facts)
    if path is not None:
        eng = DurableEngine(compile_ruleset(load_ruleset(RuleSource.from_path(path))))
        try:
            decision = eng.evaluate(data)
        finally:
            eng.close()
    else:
        decision = evaluate(data)
    typer.echo(decision.model_dump_json(indent=2))

