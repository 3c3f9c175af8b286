"""`casemgr casetypes …`: check, diff, publish (a change request), versions, rollback, migrate, model.

Case types (policies/case-types.yaml) and SOPs / work instructions (policies/sop/) are versioned documents
(issue 22). Publishing and rolling back need `--author`, an active user with the governance role; a second lead
approves with `casemgr policy approve ID --author USER` unless single-person publish is on.
Exit codes: 0 ok, 1 refused (permission, unknown version), 2 invalid document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="Case types and SOPs as versioned documents; migrate running cases.", no_args_is_help=True)
KIND_HELP = "case-types (policies/case-types.yaml) or sop (policies/sop/)"


def _files(kind: str, path: Path | None) -> dict[str, str]:
    from casemgr.casetypes.lifecycle import dtype_of
    from casemgr.policyfile import PolicyFileError

    dtype = _run(lambda: dtype_of(kind))
    try:
        return dict(dtype.read_path(path or dtype.shipped_path()).files)
    except PolicyFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _run(fn: Any) -> Any:
    from casemgr.errors import DomainError
    from casemgr.policyfile import PolicyFileError

    try:
        return fn()
    except PolicyFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _user(author: str) -> tuple[str, int, set[str]]:
    from casemgr.governance.cli import _user as user

    return user(author)


@app.command("check")
def check(path: Path = typer.Argument(None, help="File or folder (default: the shipped one)."),
          kind: str = typer.Option("case-types", "--kind", help=KIND_HELP)) -> None:
    """Validate a candidate; problems are printed as file:line: message."""
    from casemgr.casetypes import lifecycle

    problems = lifecycle.check(kind, _files(kind, path))
    for p in problems:
        typer.echo(str(p), err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo("ok")


@app.command("diff")
def diff(path: Path = typer.Argument(None, help="Candidate file or folder."),
         kind: str = typer.Option("case-types", "--kind", help=KIND_HELP)) -> None:
    """Unified diff from the version in force to a candidate."""
    from casemgr.casetypes import lifecycle
    from casemgr.db import read_session

    files = _files(kind, path)
    with read_session() as s:
        typer.echo(lifecycle.diff(s, kind, files) or "no changes")


@app.command("publish")
def publish(path: Path = typer.Argument(None, help="Candidate file or folder."),
            kind: str = typer.Option("case-types", "--kind", help=KIND_HELP),
            reason: str = typer.Option(..., "--reason", help="Why (stored with the version)."),
            author: str = typer.Option(..., "--author", help="User with the governance role.")) -> None:
    """Validate and submit as a change request (four eyes; at once only with single-person publish)."""
    from casemgr.casetypes import lifecycle
    from casemgr.db import write_session

    files = _files(kind, path)
    actor, user_id, roles = _user(author)
    with write_session() as s:
        r = _run(lambda: lifecycle.request_publish(s, kind, files, actor=actor, user_id=user_id, roles=roles,
                                                   reason=reason))
    if r["status"] == "published":
        typer.echo(f"published {kind} {r['version']} (single-person publish)")
    else:
        typer.echo(f"change request {r['request']['id']} for {kind} {r['version']} is waiting for a second "
                   f"governance lead: casemgr policy approve {r['request']['id']} --author USER")


@app.command("versions")
def versions(kind: str = typer.Option("case-types", "--kind", help=KIND_HELP),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Published versions, newest first (v1 is the shipped baseline)."""
    from casemgr.casetypes import lifecycle
    from casemgr.db import read_session

    with read_session() as s:
        vs = _run(lambda: lifecycle.versions(s, kind))
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in x.items() if k != "diff"} for x in vs], indent=2))
        return
    typer.echo("\n".join(f"{'*' if v['is_active'] else ' '} v{v['number']:<3} {v['version']} {v['created_at']} "
                         f"{v['author']}: {v['reason']}" for v in vs) or "no published versions (the files are in force)")


@app.command("rollback")
def rollback(to: str = typer.Option(None, "--to", help="Version (v1, hash prefix; default: the previous one)."),
             kind: str = typer.Option("case-types", "--kind", help=KIND_HELP),
             reason: str = typer.Option(..., "--reason"),
             author: str = typer.Option(..., "--author", help="User with the governance role.")) -> None:
    """Re-activate an earlier version (new cases only: running cases stay on theirs)."""
    from casemgr.casetypes import lifecycle
    from casemgr.db import write_session

    actor, _, roles = _user(author)
    with write_session() as s:
        r = _run(lambda: lifecycle.rollback(s, kind, actor=actor, roles=roles, reason=reason, to=to))
    typer.echo(f"active {kind} version is now {r.version}")


@app.command("migrate")
def migrate(from_ref: str = typer.Option(..., "--from", help="Version the cases are on (v1, v2, hash prefix)."),
            to_ref: str = typer.Option(..., "--to", help="Version to move them to."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would move and what cannot."),
            case_type: str = typer.Option(None, "--case-type", help="Only cases of this type."),
            author: str = typer.Option("system:casetypes-migrate", "--author",
                                       help="Actor recorded in the audit trail."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Move running cases whose stage exists in the target version; list those that cannot move and why."""
    from casemgr.casetypes.migrate import migrate as run
    from casemgr.db import write_session

    actor = author if ":" in author else f"user:{author}"
    with write_session() as s:
        report = _run(lambda: run(s, from_ref, to_ref, actor=actor, dry_run=dry_run, case_type=case_type))
        if dry_run:
            s.rollback()
    out = report.as_dict()
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    verb = "would move" if dry_run else "moved"
    lines = [f"{verb} {out['moved']} case(s) from {report.from_version} to {report.to_version}; "
             f"{out['blocked']} cannot move"]
    lines += [f"  {verb}: {c['reference']} ({c['case_type']}, {c['stage']})" for c in out["cases"]]
    lines += [f"  cannot move: {c['reference']}: {c['reason']}" for c in out["cannot_move"]]
    typer.echo("\n".join(lines))


@app.command("model")
def model(case_type: str = typer.Argument(..., help="Case type name."),
          version: str = typer.Option(None, "--version", help="Version to draw (default: in force)."),
          compare: str = typer.Option(None, "--compare", help="Version to mark the differences against."),
          out: Path = typer.Option(None, "--out", help="SVG file (default: stdout).")) -> None:
    """Draw a case type as SVG (the model view), optionally with the diff against another version."""
    from casemgr.casetypes.model import model_view
    from casemgr.db import read_session

    with read_session() as s:
        view = _run(lambda: model_view(s, case_type, version=version, compare=compare))
    if out is None:
        typer.echo(view.svg)
        return
    out.write_text(view.svg, encoding="utf-8")
    words = view.diff.words() if view.compare else []
    typer.echo(f"wrote {out} ({view.version_label}{', compared with ' + str(view.compare_label) if view.compare else ''})"
               + "".join(f"\n  {w}" for w in words))
