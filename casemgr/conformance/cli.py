"""`casemgr export conformance --json`: conformance per case type from the event log."""

from __future__ import annotations

import json

import typer


def conformance(
    as_json: bool = typer.Option(False, "--json", help="The full report as JSON (default: one summary line per type)."),
    case_type: str = typer.Option("", "--type", help="Only this case type."),
) -> None:
    """Share of cases that followed only designed transitions, the most frequent deviations (skipped stages,
    rework loops, back-transitions, never-used stages), time lost in rework and handoff delays, per case type."""
    from casemgr.casetypes.registry import get_registry
    from casemgr.conformance.service import report
    from casemgr.db import read_session

    if case_type and case_type not in get_registry().case_types:
        typer.echo(f"error: unknown case type {case_type!r}; known: {', '.join(sorted(get_registry().case_types))}",
                   err=True)
        raise typer.Exit(2)
    with read_session() as session:
        data = report(session, case_type=case_type or None)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    for name, r in data["case_types"].items():  # a one-line summary per type; --json has everything
        share = "–" if r["conformance"] is None else f"{r['conformance'] * 100:.1f} %"
        top = ", ".join(f"{d['kind']} {d['what']} ({d['cases']})" for d in r["deviations"][:3]) or "none"
        typer.echo(f"{name}: {r['conforming']}/{r['cases']} conforming ({share}); rework "
                   f"{r['rework_hours_lost']} h; top deviations: {top}")
