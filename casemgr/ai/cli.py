"""`casemgr ai …`: train, evaluate and use the offline models; talk to the configured provider.

Heavy imports (scikit-learn, openai) happen inside the commands so `casemgr --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(help="AI: classify, summarize, suggest, extract contracts; train and evaluate models.",
                  no_args_is_help=True)


def _echo(obj: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            typer.echo(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v}")
    else:
        typer.echo(str(obj))


def _fail(msg: str, code: int = 1) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code)


def _artifacts_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("casemgr.ai").joinpath("artifacts")))


def _provider(name: str | None) -> Any:
    from casemgr.ai.providers import get_provider

    try:
        return get_provider(name)
    except ValueError as exc:
        _fail(str(exc), 2)


@app.command()
def train(
    data: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Labelled CSV."),
    text: str | None = typer.Option(None, help="Text column."),
    label: str | None = typer.Option(None, help="Label column."),
    out: Path | None = typer.Option(None, help="Output .joblib path or folder (default: the package's artifacts)."),
    folds: int | None = typer.Option(None, help="Stratified CV folds for calibration and the metadata (0 to skip; "
                                                "default 5, or learning_folds with --candidate)."),
    candidate: bool = typer.Option(False, "--candidate", help=(
        "Train a candidate on the shipped data plus reviewed examples (casemgr.learning), compare it with the "
        "active model on held-back reviewed cases and write the report; it is offered to governance leads only "
        "if it beats the active model. Nothing is activated.")),
    recipe: str | None = typer.Option(None, help="With --candidate: ensemble (default) or linear."),
    target: str | None = typer.Option(None, help=(
        "urgency or intent: train that target's model on the shipped annotation (--data/--text/--label default to "
        "it) with the target's recipe and supplementary rows (training side only), and replace its artefact.")),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the category classifier (or --target's model) and write a versioned artefact (+ JSON metadata)."""
    from casemgr.ai import classifier, targets

    if candidate:
        from casemgr.learning.cli import train_candidate

        train_candidate(as_json, recipe, folds)
        return
    try:
        tgt = targets.get(target) if target else None
    except ValueError as exc:
        _fail(str(exc), 2)
    if tgt is not None and tgt.lexicon is not None:
        data, text, label = data or targets.annotated_data(), text or "narrative", label or tgt.label_column
    if data is None or not text or not label:
        _fail("--data, --text and --label are required (or --candidate)", 2)
    assert data is not None and text and label
    folds = 5 if folds is None else folds
    prefix = tgt.prefix if tgt is not None else classifier.ARTIFACT_PREFIX
    try:
        if tgt is not None and tgt.lexicon is not None:
            extra = targets.supplement_rows(tgt)
            cm = classifier.train(data, text, label, folds=folds, kind=tgt.kind, builder=tgt.builder(),
                                  raw_decision=tgt.raw_decision, extra=extra if extra[0] else None)
            if tgt.supplement:
                supp = targets.supplement_path(tgt)
                cm.meta.update(supplement=supp.name, supplement_sha256=classifier.file_sha256(supp))
        else:
            cm = classifier.train(data, text, label, folds=folds)
    except ValueError as exc:
        _fail(str(exc), 2)
    dest = out or _artifacts_dir()
    replacing = out is None
    old = sorted(_artifacts_dir().glob(f"{prefix}*")) if replacing else []
    path, meta_path = classifier.save(cm, dest, prefix=prefix)
    for f in old:  # the package ships exactly one current artefact
        if f not in (path, meta_path):
            f.unlink()
    cv = cm.meta.get("cv") or {}
    _echo({"artifact": str(path), "metadata": str(meta_path), "version": cm.version, "labels": cm.labels,
           "cv_macro_f1": cv.get("macro_f1"), "cv_accuracy": cv.get("accuracy")}, as_json)


@app.command("eval")
def eval_cmd(
    data: Path = typer.Option(..., exists=True, dir_okay=False),
    text: str = typer.Option(...),
    label: str = typer.Option(...),
    target: str = typer.Option("category", help="category, urgency or intent."),
    model: Path | None = typer.Option(None, help="Artefact to use (default: the installed one for the target)."),
    provider: str | None = typer.Option(None, help="Override CASEMGR_AI_PROVIDER."),
    cv: int = typer.Option(0, help="K-fold cross-validation of the training recipe instead of the installed model."),
    supplement: bool = typer.Option(True, help=(
        "With --cv: add the target's supplementary rows (if any) to every training fold; they are never tested.")),
    wrap: str = typer.Option("none", help="Wrap each text as an email: none, email or advert (pasted advert)."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Score a target on a labelled CSV: macro_f1, per-class F1, ece, docs_per_s, summary quality."""
    import time

    from casemgr.ai import classifier, evaluate, targets
    from casemgr.ai.wrap import wrap_all

    try:
        tgt = targets.get(target)
        texts, labels = classifier.read_labelled_csv(data, text, label)
        if not texts:
            raise ValueError(f"no labelled rows in {data}")
        if cv:
            extra = targets.supplement_rows(tgt) if supplement else ([], [])
            result = evaluate.cross_validated(texts, labels, tgt, folds=cv, seed=seed, wrap=wrap,
                                              extra=extra if extra[0] else None)
            result["summary"] = evaluate.summary_quality(texts)
            _echo(result, as_json)
            return
        test_texts = wrap_all(texts, wrap, seed=seed + 1)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc), 2)
    p = _provider(provider)
    if p.name == "local":
        cm = classifier.load(model) if model else classifier.default_model(prefix=tgt.prefix)
        result = evaluate.installed(cm, test_texts, labels)
    else:
        t0 = time.perf_counter()
        preds = []
        for t in test_texts:
            try:
                preds.append(getattr(p.classify(t), tgt.name.value).label)
            except Exception:  # noqa: BLE001 - an unanswered row counts as wrong
                preds.append("__unavailable__")
        result = evaluate.with_per_class(classifier.scores(labels, preds, sorted(set(labels))))
        result["ece"] = None  # a remote model's confidences are not comparable here
        result["docs_per_s"] = round(len(texts) / max(time.perf_counter() - t0, 1e-9), 2)
        result["model_version"] = p.model
    result["wrap"] = wrap
    result["summary"] = evaluate.summary_quality(texts)
    _echo(result, as_json)


def _stdin_text() -> str:
    data = sys.stdin.read()
    if not data.strip():
        _fail("no text on stdin", 2)
    return data


@app.command()
def classify(
    as_json: bool = typer.Option(False, "--json"),
    provider: str | None = typer.Option(None),
) -> None:
    """Classify one text read from stdin: category, urgency, sentiment with confidences."""
    from casemgr.ai.service import run_capability

    outcome = run_capability(_provider(provider), "classify", _stdin_text())
    if not outcome.ok:
        _echo({"status": outcome.status, "error": outcome.error}, as_json)
        raise typer.Exit(3)
    _echo(dict(outcome.output or {}, provider=outcome.record["provider"], model_version=outcome.record["model_version"]), as_json)


@app.command()
def summarize(as_json: bool = typer.Option(False, "--json"), provider: str | None = typer.Option(None)) -> None:
    """Summarize one text from stdin (at most 3 sentences) and list key facts."""
    from casemgr.ai.service import run_capability

    outcome = run_capability(_provider(provider), "summarize", _stdin_text())
    if not outcome.ok:
        _echo({"status": outcome.status, "error": outcome.error}, as_json)
        raise typer.Exit(3)
    _echo(outcome.output, as_json)


@app.command()
def suggest(
    allowed: str = typer.Option(..., help="Comma-separated allowed actions for the case's stage."),
    as_json: bool = typer.Option(False, "--json"),
    provider: str | None = typer.Option(None),
) -> None:
    """Suggest the next step for the text on stdin, only from the allowed actions."""
    from casemgr.ai.service import run_capability

    actions = [a.strip() for a in allowed.split(",") if a.strip()]
    outcome = run_capability(_provider(provider), "suggest", _stdin_text(), allowed=actions)
    if not outcome.ok:
        _echo({"status": outcome.status, "error": outcome.error}, as_json)
        raise typer.Exit(3)
    _echo(outcome.output, as_json)


@app.command("extract-contract")
def extract_contract(
    files: list[Path] = typer.Argument(..., help="One or more .txt contracts (a back catalogue at once)."),
    as_json: bool = typer.Option(False, "--json"),
    provider: str | None = typer.Option(None),
) -> None:
    """Extract parties, dates, renewal, notice, governing law and the 8 CUAD clauses from .txt contracts.

    One JSON line per file, with "file" naming it; the models load once for all files. A file that
    cannot be read or extracted gets {"file", "status": "error", "error"} and the exit code is 3.
    """
    from casemgr.ai.service import run_capability

    p = _provider(provider)
    failed = 0
    for file in files:
        if not file.is_file():
            failed += 1
            _echo({"file": str(file), "status": "error", "error": "not a readable file"}, True)
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        outcome = run_capability(p, "extract_contract", text)
        if not outcome.ok:
            failed += 1
            _echo({"file": str(file), "status": outcome.status, "error": outcome.error}, True)
            continue
        out = {"file": str(file), **dict(outcome.output or {})}
        # The CLI contract: each clause is exactly {"present", "span"}.
        out["clauses"] = {k: {"present": v["present"], "span": v["span"]} for k, v in out.get("clauses", {}).items()}
        if as_json or len(files) > 1:
            typer.echo(json.dumps(out, ensure_ascii=False))
        else:
            _echo(out, False)
    if failed:
        raise typer.Exit(3)


@app.command("train-contracts")
def train_contracts(
    data_dir: Path = typer.Option(..., exists=True, file_okay=False, help="CUAD folder (master_clauses.csv, contracts/)."),
    out: Path | None = typer.Option(None),
    folds: int = typer.Option(5, help="Outer CV folds reported in the metadata (0 to skip)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train the clause model on CUAD and write a versioned artefact."""
    from casemgr.ai import contracts

    model = contracts.train(data_dir, cv_folds=folds)
    replacing = out is None
    old = sorted(_artifacts_dir().glob(f"{contracts.ARTIFACT_PREFIX}*")) if replacing else []
    path, meta_path = contracts.save(model, out or _artifacts_dir())
    for f in old:
        if f not in (path, meta_path):
            f.unlink()
    _echo({"artifact": str(path), "metadata": str(meta_path), "version": model.version, "cv": model.meta.get("cv")}, as_json)


@app.command("eval-contracts")
def eval_contracts(
    data_dir: Path = typer.Option(..., exists=True, file_okay=False),
    folds: int = typer.Option(5),
    limit: int | None = typer.Option(None, help="Use only the first N contracts (quick checks)."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-clause F1 by k-fold CV across contracts (thresholds tuned inside folds) and date accuracy."""
    from casemgr.ai import contracts

    docs = contracts.load_cuad(data_dir, limit=limit)
    if len(docs) < folds * 2:
        _fail(f"need at least {folds * 2} contracts for {folds}-fold CV", 2)
    _echo(contracts.cross_validate(docs, folds=folds, seed=seed), as_json)

