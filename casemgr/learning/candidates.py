"""Train a candidate category classifier from the shipped data plus reviewed examples, compare it with the
active model on the held-back slice, and decide whether it may be offered (`casemgr ai train --candidate`).

The held-back slice is every reviewed example whose case falls in the holdout (dataset.split_of), minus any
example the active model could have seen: one it was trained on (its metadata lists the decisions) and one
whose text is in the shipped training data. Neither model trained on what is left.

The gate: the candidate is OFFERED only if its macro-F1 on that slice exceeds the active model's by more than
learning_min_gain, on at least learning_min_holdout examples; otherwise it is REFUSED and the report says why.
Nothing here activates anything: a lead requests activation (activation.py) and a second lead approves it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from casemgr.ai import classifier, targets
from casemgr.ai.calibration import ece
from casemgr.ai.text import normalise
from casemgr.clock import now
from casemgr.errors import ValidationFailed
from casemgr.learning import dataset, store
from casemgr.learning.enums import CANDIDATE_TRAINED, CandidateVerdict, Split
from casemgr.learning.model_doc import AI_MODEL, CANDIDATES

BASE_TEXT, BASE_LABEL = "narrative", "product"


def build_linear() -> Any:
    """The fast recipe: cue tokens + word/char TF-IDF + one logistic regression (no ensemble)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from casemgr.ai.cues import CueTokens

    return make_pipeline(CueTokens(), TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
                         LogisticRegression(C=5, max_iter=3000))


RECIPES: dict[str, Callable[[], Any]] = {"ensemble": classifier.build_model, "linear": build_linear}


@dataclass
class ActiveModel:
    path: Path
    model: classifier.CategoryModel
    source: str  # bundled | candidates

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def trained_on(self) -> set[int]:
        return {int(x) for x in self.model.meta.get("trained_on_decisions") or []}


def active_model(session: Any) -> ActiveModel:
    """The category model in force (the ai-model document, else the bundled artefact), loaded."""
    from casemgr.documents import service

    doc = service.in_force(session, AI_MODEL)
    path = AI_MODEL.validate(doc, label="ai-model in force")
    source = AI_MODEL.parse(doc).artifact.split("/", 1)[0]
    return ActiveModel(path, classifier.load_cached(str(path)), source)


def _score(cm: classifier.CategoryModel, texts: Sequence[str], labels: Sequence[str],
           label_set: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    preds, confs = [], []
    for label, conf, _ in cm.predict(list(texts)):
        preds.append(label)
        confs.append(conf)
    out = classifier.scores(list(labels), preds, list(label_set))
    out["ece"] = ece(confs, [p == t for p, t in zip(preds, labels, strict=True)])
    out["model_version"] = cm.version
    return out, preds


def compare(active: classifier.CategoryModel, candidate: classifier.CategoryModel, texts: Sequence[str],
            labels: Sequence[str]) -> dict[str, Any]:
    """Both models on the same slice, scored over the same label set: macro-F1, per class, calibration (ECE)."""
    label_set = sorted(set(labels) | set(active.labels) | set(candidate.labels))
    a, a_pred = _score(active, texts, labels, label_set)
    c, c_pred = _score(candidate, texts, labels, label_set)
    present = [lab for lab in label_set if lab in set(labels) or lab in set(a_pred) | set(c_pred)]
    per_class = {lab: {"active_f1": a["per_label"][lab]["f1"], "candidate_f1": c["per_label"][lab]["f1"],
                       "change": round(c["per_label"][lab]["f1"] - a["per_label"][lab]["f1"], 4),
                       "support": a["per_label"][lab]["support"]} for lab in present}
    # The macro average over the labels of this slice (a label nobody predicted nor holds would add a 0 to both).
    from sklearn.metrics import f1_score

    for res, pred in ((a, a_pred), (c, c_pred)):
        res["macro_f1"] = round(float(f1_score(list(labels), pred, labels=present, average="macro", zero_division=0)), 4)
        res.pop("per_label", None)
    changed = sum(x != y for x, y in zip(a_pred, c_pred, strict=True))
    return {"n": len(labels), "active": a, "candidate": c, "per_class": per_class, "predictions_changed": changed,
            "macro_f1_gain": round(c["macro_f1"] - a["macro_f1"], 4)}


def _settings() -> Any:
    from casemgr.config import get_settings

    return get_settings()


def _digest(examples: Sequence[dataset.Example], active_version: str) -> str:
    ids = ",".join(str(e.decision_id) for e in sorted(examples, key=lambda e: e.decision_id))
    return hashlib.sha256(f"{active_version}|{ids}".encode()).hexdigest()[:16]


def train_candidate(*, actor: str, recipe: str | None = None, folds: int | None = None,
                    min_holdout: int | None = None, min_gain: float | None = None,
                    skip_unchanged: bool = False) -> dict[str, Any]:
    """Train, compare and gate one candidate; returns the report (also stored beside the artefact and audited).

    Reads in one short read transaction, trains outside any transaction (a minute or more with the ensemble),
    then records the audit event in a short write transaction."""
    from casemgr.db import read_session, write_session

    settings = _settings()
    recipe = recipe or settings.learning_recipe
    if recipe not in RECIPES:
        raise ValidationFailed(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}", field="recipe")
    folds = settings.learning_folds if folds is None else folds
    min_holdout = settings.learning_min_holdout if min_holdout is None else min_holdout
    min_gain = settings.learning_min_gain if min_gain is None else min_gain
    stats: dict[str, int] = {}
    with read_session() as s:
        examples = list(dataset.examples(s, stats=stats))
        active = active_model(s)
    base = classifier.read_labelled_csv(targets.annotated_data(), BASE_TEXT, BASE_LABEL)
    base_texts = {normalise(t) for t in base[0]}
    train = [e for e in examples if e.split == Split.TRAIN]
    holdout_all = [e for e in examples if e.split == Split.HOLDOUT]
    holdout = [e for e in holdout_all
               if e.decision_id not in active.trained_on and normalise(e.text) not in base_texts]
    digest = _digest(examples, active.version)
    latest = store.reports(1)
    if skip_unchanged and latest and latest[0].get("examples_digest") == digest:
        return {**latest[0], "skipped": "nothing new since this candidate"}
    report: dict[str, Any] = {
        "examples_digest": digest,
        "trained_at": now().isoformat(), "actor": actor, "recipe": recipe, "folds": folds,
        "active_version": active.version, "active_source": active.source,
        "examples": {"reviewed": len(examples), "train": len(train), "holdout": len(holdout),
                     "holdout_excluded": len(holdout_all) - len(holdout), **stats},
        "holdout_share": dataset.holdout_share(), "min_holdout": min_holdout, "min_gain": min_gain,
        "holdout_decisions": [e.decision_id for e in holdout],
    }
    if not train:
        return _finish(report, None, CandidateVerdict.REFUSED, "no reviewed examples to learn from yet", actor)
    if len(holdout) < min_holdout:
        return _finish(report, None, CandidateVerdict.REFUSED,
                       f"only {len(holdout)} held-back reviewed examples; at least {min_holdout} are needed to show "
                       "that a candidate is better", actor)
    texts = list(base[0]) + [normalise(e.text) for e in train]
    labels = list(base[1]) + [e.label for e in train]
    cm = classifier.train_texts(texts, labels, folds=folds, builder=RECIPES[recipe],
                                raw_decision=bool(active.model.raw_decision),
                                source={"text_col": BASE_TEXT, "label_col": BASE_LABEL})
    cm.meta.update({
        "training_data": f"{targets.annotated_data().name} + {len(train)} reviewed examples",
        "trained_on_decisions": [e.decision_id for e in train], "recipe": recipe, "candidate_of": active.version,
        "holdout_share": dataset.holdout_share(),
    })
    path, _ = classifier.save(cm, store.models_dir())
    comparison = compare(active.model, cm, [e.text for e in holdout], [e.label for e in holdout])
    report.update({"version": cm.version, "artifact": f"{CANDIDATES}/{path.name}", "comparison": comparison,
                   "labels": cm.labels})
    gain = comparison["macro_f1_gain"]
    if gain > min_gain:
        verdict, why = CandidateVerdict.OFFERED, (
            f"macro-F1 on {len(holdout)} held-back reviewed cases: {comparison['candidate']['macro_f1']:.4f} vs "
            f"{comparison['active']['macro_f1']:.4f} for the active model ({gain:+.4f})")
    else:
        verdict, why = CandidateVerdict.REFUSED, (
            f"does not beat the active model on {len(holdout)} held-back reviewed cases: macro-F1 "
            f"{comparison['candidate']['macro_f1']:.4f} vs {comparison['active']['macro_f1']:.4f} ({gain:+.4f}"
            + (f"; needs more than +{min_gain:.4f})" if min_gain else ")"))
    with write_session() as s:
        return _finish(report, s, verdict, why, actor)


def _finish(report: dict[str, Any], session: Any, verdict: CandidateVerdict, why: str, actor: str) -> dict[str, Any]:
    from casemgr.audit.service import record

    report["verdict"], report["why"] = verdict.value, why
    if report.get("version"):
        store.write_report(report["version"], report)
    if session is None:
        from casemgr.db import write_session

        with write_session() as s:
            _audit(s, report, actor, record)
    else:
        _audit(session, report, actor, record)
    return report


def _audit(session: Any, report: dict[str, Any], actor: str, record: Any) -> None:
    comparison = report.get("comparison") or {}
    record(session, actor=actor, action=CANDIDATE_TRAINED, entity=f"ai-model:{report.get('version') or 'none'}",
           after={"verdict": report["verdict"], "why": report["why"], "active_version": report["active_version"],
                  "examples": report["examples"],
                  "candidate_macro_f1": (comparison.get("candidate") or {}).get("macro_f1"),
                  "active_macro_f1": (comparison.get("active") or {}).get("macro_f1")})
