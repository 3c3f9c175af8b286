"""`casemgr security export`: the security log as CSV."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import typer

app = typer.Typer(help="The security log (logins, throttling, refusals).", no_args_is_help=True)


@app.command("export")
def export(
    out: Path | None = typer.Option(None, "--out", help="File to write; stdout if omitted."),
    days: int = typer.Option(30, min=1, max=3650, help="Events seen in the last N days."),
) -> None:
    """Export the security log as CSV (formula-looking cells neutralised)."""
    from casemgr.clock import now
    from casemgr.db import read_session
    from casemgr.security import service

    since = now() - timedelta(days=days)
    with read_session() as s:
        if out:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = service.export_csv(s, fh, since=since)
            typer.echo(f"exported {n} security log rows to {out}", err=True)
        else:
            service.export_csv(s, sys.stdout, since=since)  # type: ignore[arg-type]
