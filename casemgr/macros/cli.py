"""`casemgr macros check|list`: validate policies/macros/*.yaml (file:line problems, exit 2) and list them."""

from __future__ import annotations

import json
import sys

import typer

from casemgr.macros import loader
from casemgr.policyfile import PolicyFileError

app = typer.Typer(help="Macros (canned replies with case changes) in policies/macros/*.yaml")


@app.command("check")
def check() -> None:
    """Validate every macro file; problems are printed as file:line: message (exit 2)."""
    try:
        macros = loader.load_all()
    except PolicyFileError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
    typer.echo(f"{len(macros)} macros OK in {loader.macros_dir()}")


@app.command("list")
def list_macros() -> None:
    """One JSON line per macro: name, title, case types, stages, transition."""
    for m in loader.load_all().values():
        typer.echo(json.dumps({"name": m.name, "title": m.title, "case_types": m.case_types, "stages": m.stages,
                               "transition": m.transition}))
