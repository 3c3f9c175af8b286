"""`casemgr intake eml|mbox`, and the top-level `casemgr smtp` and `casemgr imap-poll` commands."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from pathlib import Path

import typer

from casemgr.intake.service import IntakeResult

app = typer.Typer(help="Import email into cases (.eml files, mbox).", no_args_is_help=True)


def _upgrade() -> None:
    from casemgr import migrate

    migrate.upgrade()


def _emit(label: str, result: IntakeResult, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(result.line(label), ensure_ascii=False))
        return
    what = result.reference or (f"case {result.case_id}" if result.case_id else "")
    if result.status == "quarantined" or (result.status == "duplicate" and result.quarantine_id):
        what = f"quarantine #{result.quarantine_id}: {result.reason}"
    typer.echo(f"{label}: {result.status} {what}".rstrip())


def _import_one(label: str, read: Callable[[], bytes], size: int | None, json_out: bool,
                counts: dict[str, int]) -> bool:
    from casemgr.config import get_settings
    from casemgr.intake.service import ingest_raw, quarantine

    try:
        limit = get_settings().max_message_bytes
        if size is not None and size > limit:
            # Do not even read a hostile giant file into memory: quarantine the reason, keep the file.
            result = quarantine(None, f"message is {size} bytes, over the limit of {limit} bytes; the raw source "
                                f"was not stored here (it stays at {label})", channel="import", source=label)
        else:
            result = ingest_raw(read(), channel="import", source=label)
    except Exception as exc:  # noqa: BLE001 - storage failure: say so, keep going, exit non-zero
        typer.echo(f"{label}: NOT STORED ({type(exc).__name__}: {exc}); retry later", err=True)
        counts["error"] = counts.get("error", 0) + 1
        return False
    counts[result.status] = counts.get(result.status, 0) + 1
    _emit(label, result, json_out)
    return True


@app.command("eml")
def import_eml(
    files: list[Path] = typer.Argument(..., help=".eml files (RFC 5322 messages)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per message."),
) -> None:
    """Import .eml files: each becomes a case, an append to its case, a duplicate, or a quarantined record."""
    _upgrade()
    counts: dict[str, int] = {}
    for path in files:
        label = str(path)
        if not path.is_file():
            typer.echo(f"{label}: NOT STORED (no such file)", err=True)
            counts["error"] = counts.get("error", 0) + 1
            continue
        _import_one(label, path.read_bytes, path.stat().st_size, json_out, counts)
    if not json_out:
        typer.echo("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), err=True)
    if counts.get("error"):
        raise typer.Exit(1)


@app.command("mbox")
def import_mbox(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="An mbox file."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per message."),
) -> None:
    """Import every message of an mbox file (label FILE:N for the N-th message)."""
    _upgrade()
    counts: dict[str, int] = {}
    box = mailbox.mbox(str(file), create=False)
    try:
        for n, key in enumerate(box.iterkeys(), start=1):
            _import_one(f"{file}:{n}", lambda k=key: box.get_bytes(k), None, json_out, counts)
    finally:
        box.close()
    if not json_out:
        typer.echo("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), err=True)
    if counts.get("error"):
        raise typer.Exit(1)


@app.command("pipe")
def import_pipe(
    source: str = typer.Option("pipe", help="Label stored with the message (e.g. the MTA's queue id)."),
    recipient: list[str] = typer.Option([], "--recipient", help="Envelope recipient (Postfix: ${recipient})."),
) -> None:
    """One message on stdin, for an MTA pipe transport: exit 0 stored, 65 quarantined, 75 retry later.

    `casemgr intake pipe` is dispatched by casemgr.cli before this app is built (fast start-up); this command
    is the same code for `--help` and for callers that import the app.
    """
    from casemgr.intake.pipe import run

    argv = ["--source", source] + [a for r in recipient for a in ("--recipient", r)]
    raise typer.Exit(run(argv))


def smtp(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(2525, help="Port."),
) -> None:
    """Run the inbound SMTP server (250 only after the message is stored; 451 if storage fails)."""
    import logging

    from casemgr.intake.smtp import serve

    logging.basicConfig(level=logging.INFO)
    _upgrade()
    typer.echo(f"SMTP intake on {host}:{port}", err=True)
    serve(host, port)


def imap_poll(
    host: str = typer.Option(..., help="IMAP server."),
    port: int | None = typer.Option(None, help="Port (993 with --ssl, 143 otherwise)."),
    user: str = typer.Option(..., help="Login name."),
    password: str | None = typer.Option(None, envvar="CASEMGR_IMAP_PASSWORD", help="Password (or use the env var)."),
    password_file: Path | None = typer.Option(None, help="File holding the password."),
    use_ssl: bool = typer.Option(False, "--ssl", help="IMAP over TLS (the default)."),
    starttls: bool = typer.Option(False, "--starttls", help="Plain connection upgraded with STARTTLS."),
    plain: bool = typer.Option(False, "--plain", help="No TLS at all (loopback testing only)."),
    ca_file: Path | None = typer.Option(None, help="CA bundle to verify the server certificate."),
    insecure: bool = typer.Option(False, help="Do not verify the server certificate."),
    mailbox_name: str = typer.Option("INBOX", "--mailbox", help="Mailbox to read."),
    move_to: str | None = typer.Option(None, help="Move stored messages here instead of marking them \\Seen."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per message."),
) -> None:
    """Fetch unseen messages, store them durably, then mark them seen (or move them). Safe to run twice."""
    from casemgr.intake.imap import poll

    if sum([use_ssl, starttls, plain]) > 1:
        typer.echo("choose one of --ssl, --starttls, --plain", err=True)
        raise typer.Exit(2)
    tls = "starttls" if starttls else "none" if plain else "ssl"
    if password_file is not None:
        password = password_file.read_text().strip()
    if not password:
        typer.echo("a password is needed: --password, --password-file or CASEMGR_IMAP_PASSWORD", err=True)
        raise typer.Exit(2)
    _upgrade()
    try:
        results = poll(host, port or (993 if tls == "ssl" else 143), user, password, tls=tls,
                       mailbox=mailbox_name, move_to=move_to, ca_file=str(ca_file) if ca_file else None,
                       insecure=insecure)
    except Exception as exc:  # noqa: BLE001
        typer.echo(f"imap-poll stopped: {type(exc).__name__}: {exc} (unstored messages stay unseen)", err=True)
        raise typer.Exit(1) from None
    for r in results:
        _emit(f"uid:{r.uid}", r.result, json_out)
    if not json_out:
        typer.echo(f"fetched {len(results)} message(s)", err=True)
