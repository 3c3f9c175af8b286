"""The one command line: `casemgr …`. Rooms mount their own sub-commands here (one line each)."""

from __future__ import annotations

import sys

if sys.argv[1:3] == ["intake", "pipe"]:
    # An MTA runs `casemgr intake pipe` once per message: dispatch before typer, the policy-file loader and
    # every command module are imported (casemgr/intake/pipe.py says why start-up matters there).
    from casemgr.intake.pipe import main as _pipe_main

    _pipe_main(sys.argv[3:])

import json
from pathlib import Path
from typing import NoReturn

import typer

from casemgr.policyfile import PolicyFileError

app = typer.Typer(help="casemgr: rules-and-AI assisted case management.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")


@app.callback()
def _build_context() -> None:
    # Every command runs in one application context (casemgr.runtime), built here once from the environment;
    # a caller that installed one first (a test) keeps it.
    from casemgr import runtime

    if runtime.installed() is None:
        runtime.install(runtime.build())


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(1, help="Worker processes (uvicorn, uvloop + httptools)."),
    upgrade: bool = typer.Option(True, help="Apply migrations before serving."),
    worker: bool | None = typer.Option(
        None, "--worker/--no-worker",
        help="Also run one `casemgr worker` process (SLA, AI, mail jobs). Default: on for SQLite, off for "
             "PostgreSQL, where workers are deployed on their own."),
) -> None:
    """Serve the web UI and the JSON API."""
    import uvicorn

    from casemgr.casetypes.registry import load_registry

    try:
        load_registry()
    except PolicyFileError as exc:
        fail(f"refusing to start, invalid policy file:\n{exc}", 2)
    if upgrade:
        from casemgr import migrate

        migrate.upgrade()
    import os

    from casemgr.config import get_settings

    # One machine on SQLite needs nothing but `casemgr serve`: it starts and supervises one worker process
    # (jobs are leased, so extra workers elsewhere still run each job once). CASEMGR_EMBEDDED_WORKER=1 runs a
    # worker thread inside each app process instead.
    if worker is None:
        worker = get_settings().is_sqlite and "CASEMGR_EMBEDDED_WORKER" not in os.environ
    child = None
    if worker and not get_settings().embedded_worker:
        from casemgr.worker import WorkerProcess

        child = WorkerProcess()
        child.start()
    try:
        from casemgr.web.server import uvicorn_options

        uvicorn.run("casemgr.web.asgi:app", host=host, port=port, workers=workers, **uvicorn_options())
    finally:
        if child is not None:
            child.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to the database named by CASEMGR_DATABASE_URL (default: SQLite in the data dir)."""
    from casemgr import migrate
    from casemgr.config import get_settings

    migrate.upgrade()
    typer.echo(f"database is up to date: {_safe_url(get_settings().effective_database_url)}")


def _safe_url(url: str) -> str:
    # Never print a password from the database URL.
    import re

    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


@app.command()
def demo(reset: bool = typer.Option(False, help="Seed cases even if the database already has some.")) -> None:
    """Seed demo data: one user per role (passwords printed once) and 300+ cases over 90 days."""
    from casemgr import migrate
    from casemgr.demo import run_demo

    migrate.upgrade()
    result = run_demo(reset=reset)
    for name, pw in result["users"].items():
        typer.echo(f"user {name:<11} password {pw}")
    if not result["users"]:
        typer.echo("demo users already exist (passwords were printed when they were created)")
    if result.get("api_key"):
        typer.echo(f"api key (agent) {result['api_key']}   e.g. curl -H 'X-API-Key: {result['api_key']}' "
                   "http://127.0.0.1:8000/api/cases")
    typer.echo(f"cases created: {result['cases_created']} (already there: {result['cases_existing']}); "
               f"AI enrichment queued for {result.get('ai_jobs_queued', 0)} open cases (the worker runs it)")


@users_app.command("add")
def users_add(
    name: str,
    role: list[str] = typer.Option(..., "--role", help="Role; repeat for several."),
    password: str | None = typer.Option(None, help="Password; generated and printed if omitted.",
                                        envvar="CASEMGR_NEW_USER_PASSWORD"),
) -> None:
    """Create a user (for example the first admin)."""
    from casemgr import migrate
    from casemgr.db import write_session
    from casemgr.errors import DomainError
    from casemgr.users import service

    migrate.upgrade()
    pw = password or service.generate_password()
    try:
        with write_session() as session:
            service.create_user(session, name, pw, list(role), actor="cli")
    except DomainError as exc:
        fail(f"error: {exc.message}")
    typer.echo(f"created user {name} with roles {', '.join(sorted(set(role)))}")
    if not password:
        typer.echo(f"password: {pw}")


@users_app.command("set-password")
def users_set_password(
    name: str,
    password: str | None = typer.Option(None, help="New password; generated and printed if omitted.",
                                        envvar="CASEMGR_NEW_USER_PASSWORD"),
) -> None:
    """Give a user a new password (at least 12 characters, not a common one); their sessions end."""
    from casemgr.db import write_session
    from casemgr.errors import DomainError
    from casemgr.users import service

    pw = password or service.generate_password()
    try:
        with write_session() as session:
            user = service.get_user_by_name(session, name)
            if user is None:
                fail(f"error: no user {name!r}")
            service.set_password(session, int(user.id or 0), pw, actor="cli")
    except DomainError as exc:
        fail(f"error: {exc.message}")
    typer.echo(f"password of {name} changed")
    if not password:
        typer.echo(f"password: {pw}")


@users_app.command("api-key")
def users_api_key(
    name: str = typer.Argument(..., help="A name for the key, e.g. the calling system."),
    user: str | None = typer.Option(None, help="Owner user; the key acts with that user's roles."),
    scope: list[str] = typer.Option([], "--scope", help="Limit the key to these roles/scopes (e.g. intake)."),
) -> None:
    """Create an API key; the secret is printed once."""
    from casemgr.db import write_session
    from casemgr.errors import DomainError
    from casemgr.users import service

    with write_session() as session:
        uid = None
        if user:
            u = service.get_user_by_name(session, user)
            if u is None:
                fail(f"error: no user {user!r}")
            uid = u.id
        try:
            key, secret = service.create_api_key(session, name, uid, list(scope), actor="cli")
        except DomainError as exc:
            fail(f"error: {exc.message}")
    typer.echo(f"api key {key.id} ({name}): {secret}")


@users_app.command("revoke-key")
def users_revoke_key(key_id: int) -> None:
    """Revoke an API key at once."""
    from casemgr.db import write_session
    from casemgr.errors import DomainError
    from casemgr.users import service

    try:
        with write_session() as session:
            service.revoke_api_key(session, key_id, actor="cli")
    except DomainError as exc:
        fail(f"error: {exc.message}")
    typer.echo(f"revoked key {key_id}")


@audit_app.command("verify")
def audit_verify(
    json_out: bool = typer.Option(False, "--json"),
    anchor: Path | None = typer.Option(None, "--anchor", help="An anchor file from `casemgr audit anchor --out`: "
                                       "also prove that nothing up to it changed."),
) -> None:
    """Check the keyed hash chain; exit 1 naming the first bad event if anything was altered."""
    from casemgr.audit import service
    from casemgr.db import read_session

    mark = None
    if anchor is not None:
        try:
            mark = service.Anchor.from_json(anchor.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError) as exc:
            fail(f"error: {anchor}:1: not a usable anchor: {exc}", 2)
    with read_session() as session:
        result = service.verify(session, mark)
    if json_out:
        typer.echo(json.dumps({"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq,
                               "reason": result.reason, "anchor_seq": mark.seq if mark else None}))
    elif result.ok:
        typer.echo(f"audit trail intact: {result.checked} events"
                   + (f", unchanged up to the anchor at event {mark.seq}" if mark else ""))
    else:
        typer.echo(f"AUDIT TRAIL BROKEN at event {result.first_bad_seq}: {result.reason}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    out: Path | None = typer.Option(None, "--out", help="Write the anchor to this new file (never overwritten); "
                                    "stdout if omitted. Keep it on write-once storage."),
) -> None:
    """Print the chain head (seq, hash, time) so a later `audit verify --anchor` can prove nothing before it changed."""
    from casemgr.audit import service
    from casemgr.db import read_session

    with read_session() as session:
        mark = service.anchor(session)
    text = mark.to_json()
    if out is None:
        typer.echo(text)
        return
    try:
        with out.open("x", encoding="utf-8") as fh:  # "x": an existing anchor is never replaced
            fh.write(text + "\n")
    except FileExistsError:
        fail(f"error: {out} already exists; anchors are write-once, choose a new file name")
    except OSError as exc:
        fail(f"error: cannot write {out}: {exc}")
    typer.echo(f"anchored event {mark.seq} ({mark.hash[:16]}…) to {out}", err=True)


@audit_app.command("export")
def audit_export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv"),
    out: Path | None = typer.Option(None, "--out", help="File to write; stdout if omitted."),
) -> None:
    """Export the audit log."""
    from casemgr.audit import service
    from casemgr.db import read_session

    if fmt not in ("jsonl", "csv"):
        fail("error: --format must be jsonl or csv", 2)
    with read_session() as session:
        if out:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = service.export(session, fmt, fh)
            typer.echo(f"exported {n} events to {out}", err=True)
        else:
            service.export(session, fmt, sys.stdout)


@app.command("backup")
def backup_cmd(path: Path) -> None:
    """Back up the configured database to PATH (SQLite online backup API, or pg_dump)."""
    from casemgr.ops.backup import BackupError, backup

    try:
        info = backup(path)
    except BackupError as exc:
        fail(f"backup failed: {exc}")
    typer.echo(json.dumps(info))


@app.command("restore")
def restore_cmd(path: Path) -> None:
    """Restore PATH into the database named by CASEMGR_DATABASE_URL (default: SQLite in the data dir)."""
    from casemgr.ops.backup import BackupError, restore

    try:
        info = restore(path)
    except BackupError as exc:
        fail(f"restore failed: {exc}")
    typer.echo(json.dumps(info))


# Every command group and command the rooms add, in ONE list: (module, attribute, where). `where` is the
# command path: "rules" mounts a typer.Typer (or adds a function) as `casemgr rules …`; "ai bench" adds a function
# to the group mounted as "ai". Registration imports each module: an import error stops `casemgr` at once.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("casemgr.rules.cli", "app", "rules"),
    ("casemgr.worker", "cli", "worker"),
    ("casemgr.metrics.cli", "export_app", "export"),
    ("casemgr.metrics.cli", "metrics_app", "metrics"),
    ("casemgr.conformance.cli", "conformance", "export conformance"),  # issue 22: conformance per case type
    ("casemgr.rootcause.cli", "root_causes", "export root-causes"),  # issue 22: complaint root causes (CSV/JSON)
    ("casemgr.intake.cli", "app", "intake"),
    ("casemgr.intake.cli", "smtp", "smtp"),
    ("casemgr.intake.cli", "imap_poll", "imap-poll"),
    ("casemgr.ai.cli", "app", "ai"),
    ("casemgr.bench.cli", "bench_ai", "ai bench"),  # the same command as `casemgr bench ai`
    ("casemgr.learning.cli", "dataset_app", "ai dataset"),  # issue 21: labelled examples from reviews
    ("casemgr.governance.cli", "app", "policy"),
    ("casemgr.bench.cli", "app", "bench"),
    ("casemgr.macros.cli", "app", "macros"),  # issue 20: check / list policies/macros
    ("casemgr.security.cli", "app", "security"),  # the security log (issue 18)
    ("casemgr.casetypes.cli", "app", "casetypes"),  # issue 22: versioned case types and SOPs, migrate
)


def register_commands(root: typer.Typer, commands: tuple[tuple[str, str, str], ...] = COMMANDS) -> None:
    import importlib

    groups: dict[str, typer.Typer] = {}
    for module, attr, where in commands:
        target = getattr(importlib.import_module(module), attr)
        *parent, name = where.split()
        into = groups[parent[0]] if parent else root
        if isinstance(target, typer.Typer):
            into.add_typer(target, name=name)
            groups[name] = target
        else:
            into.command(name)(target)


register_commands(app)

def main() -> None:
    try:
        app()
    except PolicyFileError as exc:
        typer.echo(f"invalid policy file:\n{exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
