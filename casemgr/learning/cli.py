"""`casemgr ai dataset export` and the candidate half of `casemgr ai train --candidate` (issue 21)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from casemgr.learning.enums import ExportFormat

dataset_app = typer.Typer(help="Labelled examples from reviewed AI decisions (overrides and accepts).",
                          no_args_is_help=True)


@dataset_app.command("export")
def export(
    fmt: ExportFormat = typer.Option(ExportFormat.JSONL, "--format", help="jsonl (one JSON object a line) or csv."),
    out: Path | None = typer.Option(None, "--out", help="File to write (default: stdout).", dir_okay=False),
    split: str | None = typer.Option(None, help="Only this split: train or holdout."),
) -> None:
    """Reviewed category decisions as labelled examples with provenance: decision and case id, reviewer, time,
    policy version, model version, verdict (accepted/overridden), the AI's label and the split."""
    from casemgr.db import read_session
    from casemgr.learning import dataset

    if split not in (None, "train", "holdout"):
        typer.echo("error: --split must be train or holdout", err=True)
        raise typer.Exit(2)
    stats: dict[str, int] = {}
    fh = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    try:
        with read_session() as s:
            rows = (e for e in dataset.examples(s, stats=stats) if split is None or e.split == split)
            n = dataset.write(rows, fmt, fh)
    finally:
        if out:
            fh.close()
    typer.echo(json.dumps({"examples": n, **stats, "format": fmt.value, "out": str(out) if out else "-"}), err=True)


def train_candidate(as_json: bool, recipe: str | None, folds: int | None) -> None:
    """Train a candidate, compare it with the active model on the holdout and print the report (exit 0 whether
    it is offered or refused; exit 2 on bad input). Nothing is activated."""
    from casemgr.errors import DomainError
    from casemgr.learning.candidates import train_candidate as run

    try:
        report = run(actor="system:cli", recipe=recipe, folds=folds)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({k: v for k, v in report.items() if k != "holdout_decisions"}, ensure_ascii=False))
        return
    typer.echo(f"candidate {report.get('version') or '(not trained)'}: {report['verdict']}: {report['why']}")
    comparison = report.get("comparison")
    if comparison:
        a, c = comparison["active"], comparison["candidate"]
        typer.echo(f"  held-back slice: {comparison['n']} reviewed cases")
        typer.echo(f"  macro-F1  active {a['macro_f1']:.4f}  candidate {c['macro_f1']:.4f}")
        typer.echo(f"  ECE       active {a['ece']:.4f}  candidate {c['ece']:.4f}")
        for label, pc in comparison["per_class"].items():
            typer.echo(f"  {label:24s} F1 {pc['active_f1']:.3f} -> {pc['candidate_f1']:.3f} "
                       f"({pc['change']:+.3f}, n={pc['support']})")
