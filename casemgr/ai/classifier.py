"""Offline category classifier: train from a labelled CSV, ship a versioned artefact, predict fast.

The model is an ensemble of scikit-learn text models (word and character TF-IDF with logistic
regression, complement naive Bayes, NB-weighted logistic regression; domain cue tokens added to the
text), combined as a product of experts and temperature-calibrated. It is small, deterministic
and classifies thousands of short texts per second on one core.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import make_pipeline, make_union

from casemgr.ai import artifact
from casemgr.ai.calibration import apply_vector_scaling, ece, fit_vector_scaling
from casemgr.ai.cues import CueTokens
from casemgr.ai.nblr import NBLogisticRegression
from casemgr.ai.targets import TARGETS, TargetName
from casemgr.ai.text import normalise

ARTIFACT_PREFIX = TARGETS[TargetName.category].prefix  # "complaints-": the registry owns the names
MODEL_KIND = "tfidf-cue-ensemble-v2"


class ProbaEnsemble(BaseEstimator, ClassifierMixin):
    """Combination of member predict_proba outputs (members must share the label set).

    combine="mean" averages probabilities; "geometric" averages log-probabilities (a product of
    experts), so one confident, well-founded member is not washed out by three unsure ones.
    """

    def __init__(self, members: Sequence[Any] = (), weights: Sequence[float] | None = None, combine: str = "mean"):
        self.members = members
        self.weights = weights
        self.combine = combine

    def fit(self, X: Sequence[str], y: Sequence[str]) -> ProbaEnsemble:
        self.members_ = [clone(m).fit(X, y) for m in self.members]
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        weights = self.weights or [1.0] * len(self.members_)
        if getattr(self, "combine", "mean") == "geometric":
            logp = sum(w * np.log(np.clip(m.predict_proba(X), 1e-9, 1.0))
                       for w, m in zip(weights, self.members_, strict=True)) / sum(weights)
            logp -= logp.max(axis=1, keepdims=True)
            p = np.exp(logp)
            return p / p.sum(axis=1, keepdims=True)
        total = sum(w * m.predict_proba(X) for w, m in zip(weights, self.members_, strict=True))
        return total / sum(weights)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def build_model() -> ProbaEnsemble:
    """The configuration chosen by 5-fold CV on complaints.csv (see casemgr/ai/README.md)."""

    def tfidf(**kw: Any) -> TfidfVectorizer:
        return TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **kw)

    # Four views whose errors are only partly correlated, combined as a product of experts.
    # Cue tokens (lexicons/complaint_cues.txt, domain knowledge, not mined from the data) lifted
    # every member they were added to by 0.01-0.04 macro-F1 in CV; NB-weighted LR adds diversity.
    word_char_lr = make_pipeline(
        CueTokens(),
        make_union(tfidf(ngram_range=(1, 2)), tfidf(analyzer="char_wb", ngram_range=(2, 5), min_df=2)),
        LogisticRegression(C=5, max_iter=3000),
    )
    word_nb = make_pipeline(CueTokens(), TfidfVectorizer(ngram_range=(1, 2), dtype=np.float32), ComplementNB(alpha=0.1))
    charwb_nb = make_pipeline(
        CueTokens(), TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), dtype=np.float32), ComplementNB(alpha=0.3)
    )
    word_nblr = make_pipeline(tfidf(ngram_range=(1, 2)), NBLogisticRegression(C=4))
    return ProbaEnsemble(members=[word_char_lr, word_nb, charwb_nb, word_nblr], combine="geometric")


def build_target_model(lexicon: str, C: float = 2.0) -> Any:  # noqa: N803 - scikit-learn's name
    """Urgency and intent (few rows, skewed classes): word + char TF-IDF with guideline cue tokens and a
    class-balanced logistic regression. Chosen by 5-fold CV on the annotated complaints (README):
    urgency macro-F1 0.60, intent 0.57, against 0.36 / 0.42 for the category ensemble, whose argmax
    follows the majority class. `C` per target (targets.Target.C): with the supplement rows intent prefers
    a weaker penalty."""
    return make_pipeline(
        CueTokens(lexicon),
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, dtype=np.float32)),
        LogisticRegression(C=C, max_iter=3000, class_weight="balanced"),
    )


def build_target_ensemble(lexicon: str, C: float = 2.0) -> ProbaEnsemble:  # noqa: N803 - scikit-learn's name
    """Intent: the class-balanced word+char LR above times the category ensemble's NB-weighted LR on word
    1-2grams (product of experts, equal weights), raw argmax. NBLR sees the words through per-class NB
    log-count ratios, so its errors differ from the LR's: in 5-fold CV on the 500 annotated complaints,
    seeds 0-4, intent macro-F1 0.654 -> 0.688 (better on every seed, README). Urgency is not helped (every
    mix with an NB-type member lost 0.01-0.35: its ordinal levels and 'normal' majority pull NB members
    the wrong way), so urgency keeps the single LR."""
    nblr = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32),
                         NBLogisticRegression(C=4))
    return ProbaEnsemble(members=[build_target_model(lexicon, C), nblr], combine="geometric")


def _softmax_sharpen(p: np.ndarray, temperature: float) -> np.ndarray:
    logp = np.log(np.clip(p, 1e-9, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """Temperature that minimises out-of-fold log loss, so confidences mean what they say."""
    best_t, best_loss = 1.0, float("inf")
    for t in np.linspace(0.2, 3.0, 57):
        q = _softmax_sharpen(proba, float(t))
        loss = float(-np.mean(np.log(np.clip(q[np.arange(len(y_idx)), y_idx], 1e-12, 1.0))))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t


@dataclass
class CategoryModel:
    model: Any
    labels: list[str]
    temperature: float = 1.0
    vocabulary: frozenset[str] = field(default_factory=frozenset)
    bias: list[float] | None = None  # per-class calibration offsets (None: temperature only, older artefacts)
    # Class-balanced models pick the label from their own scores (good for macro-F1) and state the
    # calibrated probability of that label as the confidence; calibration must not move the decision.
    raw_decision: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unknown"))

    def prepare(self, texts: Sequence[str]) -> list[str]:
        return [normalise(t, self.vocabulary) for t in texts]

    def _scores(self, texts: Sequence[str], raw: bool) -> tuple[np.ndarray, np.ndarray]:
        docs = self.prepare(texts) if raw else list(texts)
        proba = self.model.predict_proba(docs)
        # Reorder to self.labels in case the estimator sorted differently.
        order = [list(self.model.classes_).index(lab) for lab in self.labels]
        proba = proba[:, order]
        if self.bias is not None:
            return proba, apply_vector_scaling(proba, self.temperature, self.bias)
        return proba, _softmax_sharpen(proba, self.temperature)

    def predict_proba(self, texts: Sequence[str], *, raw: bool = True) -> np.ndarray:
        return self._scores(texts, raw)[1]

    def predict(self, texts: Sequence[str], *, raw: bool = True) -> list[tuple[str, float, dict[str, float]]]:
        scores_, proba = self._scores(texts, raw)
        pick = scores_.argmax(axis=1) if self.raw_decision else proba.argmax(axis=1)
        out = []
        for row, i in zip(proba, pick, strict=True):
            i = int(i)
            probs = {lab: round(float(p), 4) for lab, p in zip(self.labels, row, strict=True)}
            out.append((self.labels[i], float(row[i]), probs))
        return out


def read_labelled_csv(path: str | Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {text_col, label_col} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"column(s) not in {path}: {', '.join(sorted(missing))}")
        for row in reader:
            text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    return texts, labels


def scores(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0)), 4),
        "per_label": {
            lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4), "f1": round(float(f[i]), 4),
                  "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def cross_validate(
    texts: Sequence[str], labels: Sequence[str], folds: int = 5, seed: int = 0, builder: Any = None,
    extra: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Stratified k-fold CV of build_model() (or `builder`); returns scores and out-of-fold probabilities.

    `extra` (texts, labels) joins the training side of every fold and is never scored: supplementary rows
    (targets.Target.supplement) must not make the figures about themselves."""
    builder = builder or build_model
    docs = np.array([normalise(t) for t in texts], dtype=object)
    y = np.array(labels)
    extra_docs = [normalise(t) for t in extra[0]] if extra else []
    extra_labels = list(extra[1]) if extra else []
    classes = sorted(set(labels))
    oof = np.zeros((len(y), len(classes)))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(docs, y):
        m = builder().fit(list(docs[tr]) + extra_docs, list(y[tr]) + extra_labels)
        order = [list(m.classes_).index(c) for c in classes]
        oof[te] = m.predict_proba(list(docs[te]))[:, order]
    pred = [classes[i] for i in oof.argmax(axis=1)]
    return scores(list(y), pred, classes), oof


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def train(data: str | Path, text_col: str, label_col: str, *, folds: int = 5, seed: int = 0,
          kind: str = MODEL_KIND, builder: Any = None, raw_decision: bool = False,
          extra: tuple[Sequence[str], Sequence[str]] | None = None) -> CategoryModel:
    texts, labels = read_labelled_csv(data, text_col, label_col)
    return train_texts(texts, labels, folds=folds, seed=seed, kind=kind, builder=builder, raw_decision=raw_decision,
                       extra=extra,
                       source={"text_col": text_col, "label_col": label_col, "training_data": Path(data).name,
                               "training_data_sha256": file_sha256(data)})


def train_texts(texts: list[str], labels: list[str], *, folds: int = 5, seed: int = 0, kind: str = MODEL_KIND,
                builder: Any = None, raw_decision: bool = False, source: dict[str, Any] | None = None,
                extra: tuple[Sequence[str], Sequence[str]] | None = None) -> CategoryModel:
    """Train on texts in memory (a candidate from reviewed examples needs no temporary file); `source` describes
    the data in the metadata. `extra` (texts, labels) is training-only data: in every CV training fold and in
    the final fit, never in a CV test fold, so the CV figures and the calibration are about `texts` alone."""
    if extra and set(extra[1]) - set(labels):
        raise ValueError(f"supplementary labels not in the data: {', '.join(sorted(set(extra[1]) - set(labels)))}")
    if len(set(labels)) < 2:
        raise ValueError("need at least two labels to train")
    classes = sorted(set(labels))
    min_count = min(labels.count(c) for c in classes)
    cv_scores: dict[str, Any] | None = None
    temperature = 1.0
    bias: list[float] | None = None
    k = min(folds, min_count)
    if k >= 2:
        cv_scores, oof = cross_validate(texts, labels, folds=k, seed=seed, builder=builder, extra=extra)
        y_idx = np.array([classes.index(lab) for lab in labels])
        # Per-class calibration (issue 17): one temperature plus a bias per class, fitted out of fold.
        temperature, bias = fit_vector_scaling(oof, y_idx)
        cal = apply_vector_scaling(oof, temperature, bias)
        pick = oof.argmax(axis=1) if raw_decision else cal.argmax(axis=1)
        conf = cal[np.arange(len(pick)), pick]
        cv_scores["ece"] = ece(conf, pick == y_idx)
        cv_scores["ece_uncalibrated"] = ece(oof[np.arange(len(pick)), pick], pick == y_idx)
        # Out-of-fold (predicted, true, calibrated confidence) rows: the calibration data from which
        # `casemgr policy suggest-thresholds` proposes per-class thresholds without retraining.
        cv_scores["oof"] = [[classes[int(i)], labels[n], round(float(c), 4)]
                            for n, (i, c) in enumerate(zip(pick, conf, strict=True))]
        cv_scores["folds"] = k
    docs = [normalise(t) for t in texts] + [normalise(t) for t in (extra[0] if extra else [])]
    model = (builder or build_model)().fit(docs, list(labels) + list(extra[1] if extra else []))
    vocabulary = frozenset(w for d in docs for w in d.split())
    meta = {
        "kind": kind,
        "labels": classes,
        **(source or {}),
        "n_train": len(texts),
        "n_supplement": len(extra[0]) if extra else 0,
        "cv": cv_scores,
        "temperature": temperature,
        "bias": bias,
        "raw_decision": raw_decision,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sklearn_version": sklearn.__version__,  # pickles are tied to it
    }
    return CategoryModel(model=model, labels=classes, temperature=temperature, vocabulary=vocabulary, bias=bias,
                         raw_decision=raw_decision, meta=meta)


def save(cm: CategoryModel, out: str | Path, prefix: str = ARTIFACT_PREFIX) -> tuple[Path, Path]:
    """Write <out>.joblib + <out>.json; the version is the content hash of the joblib bytes.

    `out` may be a directory (file named complaints-<version>.joblib inside) or a .joblib path.
    """
    payload = {"model": cm.model, "labels": cm.labels, "temperature": cm.temperature, "bias": cm.bias,
               "raw_decision": cm.raw_decision,
               "vocabulary": sorted(cm.vocabulary), "meta": {k: v for k, v in cm.meta.items() if k != "version"}}
    path, meta_path, version = artifact.write(payload, out, prefix, cm.meta)
    cm.meta["version"] = version
    return path, meta_path


def load(path: str | Path) -> CategoryModel:
    payload, meta = artifact.read(path)
    return CategoryModel(model=payload["model"], labels=list(payload["labels"]), temperature=float(payload["temperature"]),
                         vocabulary=frozenset(payload["vocabulary"]), bias=payload.get("bias"),
                         raw_decision=bool(payload.get("raw_decision", False)), meta=meta)


def bundled_artifact(prefix: str = ARTIFACT_PREFIX) -> Path:
    """Newest shipped artefact with this prefix (there is normally exactly one)."""
    folder = Path(str(resources.files("casemgr.ai").joinpath("artifacts")))
    found = sorted(folder.glob(f"{prefix}*.joblib"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"no {prefix}*.joblib artefact in {folder}; run `casemgr ai train`")
    return found[-1]


@lru_cache(maxsize=4)
def load_cached(path: str) -> CategoryModel:
    return load(path)


def default_model(path: str | None = None, prefix: str = ARTIFACT_PREFIX) -> CategoryModel:
    return load_cached(path or str(bundled_artifact(prefix)))


def evaluate(cm: CategoryModel, texts: Sequence[str], labels: Sequence[str], batch: int = 256) -> dict[str, Any]:
    """Predict only (never fits) and score; docs_per_s is measured over the whole prediction."""
    t0 = time.perf_counter()
    preds: list[str] = []
    confs: list[float] = []
    for i in range(0, len(texts), batch):
        for label, conf, _ in cm.predict(texts[i : i + batch]):
            preds.append(label)
            confs.append(conf)
    elapsed = max(time.perf_counter() - t0, 1e-9)
    known = sorted(set(cm.labels) | set(labels))
    out = scores(list(labels), preds, [lab for lab in known if lab in set(labels) or lab in set(preds)])
    out["ece"] = ece(confs, [p == t for p, t in zip(preds, labels, strict=True)])
    out["docs_per_s"] = round(len(texts) / elapsed, 1)
    out["model_version"] = cm.version
    return out
