"""`casemgr export events` (process mining) and `casemgr metrics refresh`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

export_app = typer.Typer(help="Exports for other tools.", no_args_is_help=True)
metrics_app = typer.Typer(help="Dashboard figures.", no_args_is_help=True)


@export_app.command("events")
def export_events(
    fmt: str = typer.Option("xes", "--format", help="xes or csv"),
    out: Path | None = typer.Option(None, "--out", help="File to write; stdout if omitted."),
    audit: bool = typer.Option(False, "--with-audit", help="Also SLA, assignment, task and note events."),
) -> None:
    """Event log (case id, activity, timestamp, resource) from stage history, for pm4py/ProM/Disco."""
    from casemgr.db import read_session
    from casemgr.metrics.export import write_csv, write_xes

    if fmt not in ("xes", "csv"):
        typer.echo("error: --format must be xes or csv", err=True)
        raise typer.Exit(2)
    writer = write_xes if fmt == "xes" else write_csv
    with read_session() as session:
        if out:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = writer(session, fh, include_audit=audit)
            typer.echo(f"exported {n} events to {out}", err=True)
        else:
            writer(session, sys.stdout, include_audit=audit)


@metrics_app.command("refresh")
def metrics_refresh(full: bool = typer.Option(False, "--full", help="Rebuild the rollups from every stage visit "
                                                                   "(a repair; a refresh adds only what changed).")) -> None:
    """Refresh the dashboard figures now (the worker does this every few minutes, from the changes since its last
    run). --full rebuilds the stage-visit rollups from scratch, in short transactions like every refresh."""
    import time

    from casemgr.metrics import service

    t0 = time.perf_counter()
    live = service.refresh_in_steps(full=full)
    typer.echo(json.dumps({"refreshed": True, "seconds": round(time.perf_counter() - t0, 3), **live["totals"]}))
