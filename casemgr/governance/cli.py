"""`casemgr policy …`: check, diff, simulate, publish (a change request), requests, approve, reject, rollback,
versions, active, replay, enrich, overrides.

Publishing, rolling back and replaying need `--author`, an existing user holding the governance role; the
audit trail names them. Exit codes: 0 ok, 1 refused (permission, nothing to roll back), 2 invalid policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="The AI policy: validate, diff, simulate, publish, roll back.", no_args_is_help=True)


def _path(path: Path | None) -> Path:
    from casemgr.governance.policy import policy_path

    return path or policy_path()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{path}:0: cannot read: {exc}", err=True)
        raise typer.Exit(2) from None


def _echo(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def _principal(author: str) -> tuple[str, set[str]]:
    actor, _, roles = _user(author)
    return actor, roles


def _user(author: str) -> tuple[str, int, set[str]]:
    from casemgr.db import read_session
    from casemgr.users import service as users

    with read_session() as s:
        user = users.get_user_by_name(s, author)
        if user is None or not user.active:
            typer.echo(f"error: no active user {author!r}", err=True)
            raise typer.Exit(1)
        return f"user:{user.username}", int(user.id or 0), set(users.roles_of(s, user.id or 0))


def _run(fn: Any) -> Any:
    from casemgr.errors import DomainError
    from casemgr.governance.lifecycle import InvalidPolicy

    try:
        return fn()
    except InvalidPolicy as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command("check")
def check(path: Path = typer.Argument(None, help="Policy file (default: <policies>/ai-policy.yaml)."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Validate a policy file; print every problem as file:line: reason; exit 2 if invalid."""
    from casemgr.governance.lifecycle import check as do_check

    p = _path(path)
    result = do_check(_read(p), str(p))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif result["ok"]:
        typer.echo(f"{p}: OK, version {result['version']}")
        for w in result["warnings"]:
            typer.echo(f"warning: {w}")
    else:
        for pr in result["problems"]:
            typer.echo(f"{pr['file']}:{pr['line']}: {pr['message']}", err=True)
    if not result["ok"]:
        raise typer.Exit(2)


@app.command("diff")
def diff(path: Path = typer.Argument(None, help="Candidate policy file."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Show what the candidate changes against the active policy."""
    from casemgr.db import read_session
    from casemgr.governance import lifecycle

    text = _read(_path(path))
    with read_session() as s:
        d = _run(lambda: lifecycle.diff(s, text))
    lines = [f"active {d['active_version']} -> candidate {d['candidate_version']}"]
    lines += [f"  {c['path']}: {c['active']!r} -> {c['candidate']!r}" for c in d["changes"]] or ["  (no changes)"]
    _echo(d, as_json, "\n".join(lines))


@app.command("simulate")
def simulate(path: Path = typer.Argument(None, help="Candidate policy file."),
             last: int = typer.Option(500, "--last", help="Replay the recorded AI outputs of the last N cases."),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Replay recorded AI outputs under the candidate: moves between auto, suggest and never, per owner."""
    from casemgr.db import read_session
    from casemgr.governance import lifecycle

    text = _read(_path(path))
    with read_session() as s:
        r = _run(lambda: lifecycle.simulate(s, text, last_n=last))
    lines = [f"{r['cases']} cases, {r['decisions']} recorded AI outputs; active {r['active_version']} -> "
             f"candidate {r['candidate_version']}",
             f"  applied (auto)  : {r['before']['applied']:>6} -> {r['after']['applied']}",
             f"  suggested       : {r['before']['suggested']:>6} -> {r['after']['suggested']}",
             f"  rejected (never): {r['before']['rejected']:>6} -> {r['after']['rejected']}",
             "  moves: " + (", ".join(f"{k}: {v}" for k, v in r["moves"].items()) or "none"),
             "  per owner (suggested before -> after):"]
    lines += [f"    {o}: {v['before']['suggested']} -> {v['after']['suggested']}" for o, v in r["per_owner"].items()]
    lines += ["  changes (kind / category / move: decisions; example case ids):"]
    lines += [f"    {c['kind']} / {c['category']} / {c['move']}: {c['count']}; cases "
              + ", ".join(map(str, c["examples"])) for c in r["changed"]] or ["    none"]
    _echo(r, as_json, "\n".join(lines))


@app.command("publish")
def publish(path: Path = typer.Argument(None, help="Policy file to publish."),
            reason: str = typer.Option(..., "--reason", help="Why (stored with the version)."),
            author: str = typer.Option(..., "--author", help="User with the governance role.")) -> None:
    """Validate a policy and submit it as a change request: a different governance lead approves it with
    `casemgr policy approve ID --author USER` (published at once only with CASEMGR_SINGLE_PERSON_PUBLISH)."""
    from casemgr.db import write_session
    from casemgr.governance import lifecycle

    text = _read(_path(path))
    actor, user_id, roles = _user(author)
    with write_session() as s:
        r = _run(lambda: lifecycle.request_publish(s, text, actor=actor, user_id=user_id, roles=roles,
                                                   reason=reason))
    if r["status"] == "pending":
        typer.echo(f"change request {r['request']['id']} for version {r['version']} is waiting for a second "
                   f"governance lead: casemgr policy approve {r['request']['id']} --author USER")
    elif r["status"] == "published":
        typer.echo(f"published {r['version']} (single-person publish)")
    else:
        typer.echo(f"{r['version']} is already active")
    for w in r["warnings"]:
        typer.echo(f"warning: {w}")


@app.command("requests")
def requests_cmd(status: str = typer.Option("pending", "--status", help="pending, published, rejected or all."),
                 kind: str = typer.Option(None, "--kind", help="ai-policy or rules (default: both)."),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """Change requests (four eyes) for the AI policy and the rules, newest first."""
    from casemgr.db import read_session
    from casemgr.documents import changes

    if status not in ("pending", "published", "rejected", "all"):
        typer.echo(f"error: unknown status {status!r}", err=True)
        raise typer.Exit(2)
    with read_session() as s:
        rows = [changes.as_dict(r) for r in changes.listing(s, status=None if status == "all" else status,
                                                              kind=kind, limit=500)]
    text = "\n".join(f"{r['id']:>4} {r['status']:<9} {r['kind']:<9} {r['version']} {r['created_at']} {r['author']}: "
                     f"{r['reason']}" + (f" [{r['decided_by']}: {r['comment'] or ''}]" if r["decided_by"] else "")
                     for r in rows) or f"no {'' if status == 'all' else status + ' '}change requests"
    _echo([{k: v for k, v in r.items() if k != "diff"} for r in rows], as_json, text)


def _decide(request_id: int, author: str, approve: bool, comment: str | None) -> None:
    from casemgr.db import write_session
    from casemgr.documents import changes

    actor, user_id, roles = _user(author)
    with write_session() as s:
        if approve:
            row, pub = _run(lambda: changes.approve(s, request_id, actor=actor, user_id=user_id, roles=roles,
                                                    comment=comment))
            msg = f"approved change request {row.id}: {row.kind} version {pub.version} is now active"
        else:
            row = _run(lambda: changes.reject(s, request_id, actor=actor, user_id=user_id, roles=roles,
                                              comment=comment or ""))
            msg = f"rejected change request {row.id}"
    typer.echo(msg)


@app.command("approve")
def approve(request_id: int = typer.Argument(..., help="Change request id (casemgr policy requests)."),
            author: str = typer.Option(..., "--author", help="A governance lead other than the request's author."),
            comment: str = typer.Option(None, "--comment")) -> None:
    """Approve a change request and publish it (four eyes: not your own request)."""
    _decide(request_id, author, True, comment)


@app.command("reject")
def reject(request_id: int = typer.Argument(...),
           author: str = typer.Option(..., "--author", help="A governance lead other than the request's author."),
           comment: str = typer.Option(..., "--comment", help="Why (required).")) -> None:
    """Reject a change request with a comment; nothing is published."""
    _decide(request_id, author, False, comment)


@app.command("rollback")
def rollback(to: str = typer.Option(None, "--to", help="Version hash prefix or id (default: previous)."),
             reason: str = typer.Option(..., "--reason"),
             author: str = typer.Option(..., "--author", help="User with the governance role.")) -> None:
    """Re-activate an earlier policy version."""
    from casemgr.db import write_session
    from casemgr.governance import lifecycle

    actor, roles = _principal(author)
    with write_session() as s:
        r = _run(lambda: lifecycle.rollback(s, actor=actor, roles=roles, reason=reason, to=to))
    typer.echo(f"active version is now {r['version']}")


@app.command("versions")
def versions(as_json: bool = typer.Option(False, "--json")) -> None:
    """Published versions, newest first."""
    from casemgr.db import read_session
    from casemgr.governance import lifecycle

    with read_session() as s:
        vs = lifecycle.versions(s)
    text = "\n".join(f"{'*' if v['is_active'] else ' '} {v['id']:>4} {v['version']} {v['created_at']} "
                     f"{v['author']}: {v['reason']}" for v in vs) or "no published versions (the file is in force)"
    _echo([{k: v for k, v in x.items() if k != "diff"} for x in vs], as_json, text)


@app.command("active")
def active(as_json: bool = typer.Option(False, "--json")) -> None:
    """The policy in force now, with warnings (review_by passed, kill switch)."""
    from casemgr.db import read_session
    from casemgr.governance import lifecycle

    with read_session() as s:
        info = lifecycle.active_info(s)
    text = f"version {info['version']} from {info['source']}; kill switch {info['policy']['kill_switch']}"
    text += "".join(f"\nwarning: {w}" for w in info["warnings"])
    _echo({k: v for k, v in info.items() if k != "text"}, as_json, text)


@app.command("replay")
def replay(last: int = typer.Option(500, "--last"), author: str = typer.Option(..., "--author"),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Run the last N cases' recorded AI outputs through the active policy, recording and applying outcomes."""
    from casemgr.db import write_session
    from casemgr.governance import lifecycle

    _, roles = _principal(author)
    if "governance" not in roles:
        typer.echo("error: replay needs the governance role", err=True)
        raise typer.Exit(1)
    with write_session() as s:
        r = lifecycle.replay(s, last_n=last)
    _echo(r, as_json, f"replayed {r['decisions']} outputs on {r['cases']} cases under {r['policy_version']}: "
                      f"{r['totals']}")


@app.command("enrich")
def enrich_cmd(case_id: int, as_json: bool = typer.Option(False, "--json")) -> None:
    """Run the AI pipeline for one case now (as the worker would)."""
    from casemgr.db import write_session
    from casemgr.governance.enrich import enrich_case

    with write_session() as s:
        r = _run(lambda: enrich_case(s, case_id))
    _echo(r.__dict__, as_json, f"case {case_id}: {r.status} {r.outcomes} {r.reason}")


@app.command("suggest-thresholds")
def suggest_thresholds(
    target_precision: float = typer.Option(0.9, "--target-precision", help="Precision each class must reach."),
    target: str = typer.Option("category", help="category, urgency or intent."),
    data: Path = typer.Option(None, "--data", exists=True, dir_okay=False,
                              help="Labelled CSV to calibrate on (default: the model's out-of-fold data)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Propose per-class thresholds from calibration data (lowest threshold reaching the precision)."""
    from casemgr.ai.thresholds import suggest

    try:
        out = suggest(target_precision, target, data)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    lines = [f"{k}: {v}" for k, v in out["thresholds_by_category"].items()]
    lines += [f"{k}: unreachable (keep as suggestion)" for k in out["unreachable"]]
    _echo(out, as_json, "\n".join(lines))


@app.command("export-overrides")
def export_overrides(out: Path = typer.Option(None, "--out", help="CSV file (default: stdout)."),
                     field: str = typer.Option("category", "--field")) -> None:
    """Reviewer overrides as labelled training data (CSV text,label) for `casemgr ai train`."""
    from casemgr.db import read_session
    from casemgr.governance.service import export_training_csv

    with read_session() as s:
        data = export_training_csv(s, field=field)
    if out:
        out.write_text(data, encoding="utf-8")
        typer.echo(f"wrote {max(0, data.count(chr(10)) - 1)} rows to {out}", err=True)
    else:
        typer.echo(data, nl=False)


@app.command("reviewed")
def reviewed(comment: str = typer.Option(..., "--comment", help="What was reviewed."),
             next_review_by: str = typer.Option(..., "--next", help="Next review date, YYYY-MM-DD."),
             author: str = typer.Option(..., "--author", help="User with the governance role.")) -> None:
    """Record a review of the policy in force (review_by enforcement): an audited event with the next date."""
    from datetime import date

    from casemgr.db import write_session
    from casemgr.governance.policy_review import record_review

    try:
        nxt = date.fromisoformat(next_review_by)
    except ValueError:
        typer.echo(f"error: --next must be YYYY-MM-DD, not {next_review_by!r}", err=True)
        raise typer.Exit(2) from None
    actor, roles = _principal(author)
    with write_session() as s:
        r = _run(lambda: record_review(s, actor=actor, roles=roles, comment=comment, next_review_by=nxt))
    typer.echo(f"review of {r['version']} recorded; next review by {r['review_by']}")
