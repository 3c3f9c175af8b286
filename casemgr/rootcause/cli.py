"""`casemgr export root-causes`: the product owner's CSV (or the report as JSON); `--send-digest` mails it now."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

PERIODS = (7, 30, 90, 365)


def root_causes(
    days: int = typer.Option(30, "--days", help="Period in days: 7, 30, 90 or 365 (compared with the one before)."),
    fmt: str = typer.Option("csv", "--format", help="csv (one row per cause, product, issue, queue) or json."),
    out: Path | None = typer.Option(None, "--out", help="File to write; stdout if omitted."),
    case_type: str = typer.Option("", "--type", help="Only this case type (default: every type with codes)."),
) -> None:
    """Recurring complaint root causes (agent-confirmed resolution codes with the AI's product and issue)."""
    from casemgr.casetypes.registry import get_registry
    from casemgr.db import read_session
    from casemgr.rootcause.csvexport import csv_text
    from casemgr.rootcause.report import report

    if days not in PERIODS or fmt not in ("csv", "json"):
        typer.echo(f"error: --days must be one of {', '.join(map(str, PERIODS))} and --format csv or json", err=True)
        raise typer.Exit(2)
    if case_type and case_type not in get_registry().case_types:
        typer.echo(f"error: unknown case type {case_type!r}", err=True)
        raise typer.Exit(2)
    with read_session() as session:
        text = (csv_text(session, days=days, case_type=case_type or None) if fmt == "csv"
                else json.dumps(report(session, days=days, case_type=case_type or None), indent=2))
    if out:
        out.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
