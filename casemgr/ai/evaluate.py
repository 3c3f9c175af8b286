"""`casemgr ai eval`: score a target (category, urgency, intent) on a labelled CSV.

Two modes. Default: predict with the installed artefact (never trains on the data). `--cv K`: honest
K-fold cross-validation of the training recipe (calibration fitted inside each training fold), which is
how the figures in the README and the closing notes are produced. `--wrap email|advert` wraps each test
text as a real email (greeting, signature, disclaimer, quoted reply; optionally a pasted advert) to
measure robustness. The summary block measures the offline summariser on the same texts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from casemgr.ai import classifier
from casemgr.ai.calibration import ece
from casemgr.ai.targets import Target
from casemgr.ai.text import normalise
from casemgr.ai.wrap import wrap_all

_WORD = re.compile(r"[a-z0-9$.,]+")


def with_per_class(result: dict[str, Any]) -> dict[str, Any]:
    result["per_class_f1"] = {k: v["f1"] for k, v in result.get("per_label", {}).items()}
    return result


def installed(cm: classifier.CategoryModel, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    return with_per_class(classifier.evaluate(cm, texts, labels))


def cross_validated(texts: Sequence[str], labels: Sequence[str], target: Target, *, folds: int = 5, seed: int = 0,
                    wrap: str = "none", extra: tuple[Sequence[str], Sequence[str]] | None = None) -> dict[str, Any]:
    """Out-of-fold predictions; each fold's model is calibrated on its own training part only.

    `extra` (the target's supplementary rows) joins every fold's training side and is never predicted."""
    y = np.array(labels)
    classes = sorted(set(labels))
    preds: list[str] = [""] * len(y)
    confs = np.zeros(len(y))
    t_pred = 0.0
    k = min(folds, min(list(labels).count(c) for c in classes))
    if k < 2:
        raise ValueError("every label needs at least 2 rows for cross-validation")
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        cm = _fit(texts, labels, tr, target, seed, extra)
        test_texts = wrap_all([texts[i] for i in te], wrap, seed=seed + 1)
        t0 = time.perf_counter()
        for i, (lab, conf, _) in zip(te, cm.predict(test_texts), strict=True):
            preds[i], confs[i] = lab, conf
        t_pred += time.perf_counter() - t0
    out = classifier.scores(list(y), preds, classes)
    out["ece"] = ece(confs, [p == t for p, t in zip(preds, y, strict=True)])
    out["docs_per_s"] = round(len(y) / max(t_pred, 1e-9), 1)
    out["folds"] = k
    out["wrap"] = wrap
    out["n_supplement"] = len(extra[0]) if extra else 0
    return with_per_class(out)


def _fit(texts: Sequence[str], labels: Sequence[str], idx: np.ndarray, target: Target, seed: int,
         extra: tuple[Sequence[str], Sequence[str]] | None = None) -> classifier.CategoryModel:
    import csv
    import tempfile

    # classifier.train reads a CSV (the CLI contract); a temp file keeps one training path for all callers.
    with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="", encoding="utf-8", delete=True) as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        for i in idx:
            w.writerow([texts[i], labels[i]])
        fh.flush()
        return classifier.train(fh.name, "text", "label", folds=3, seed=seed, kind=target.kind,
                                builder=target.builder(), raw_decision=target.raw_decision, extra=extra)


def summary_quality(texts: Sequence[str], limit: int = 200) -> dict[str, Any]:
    """Compression (summary chars / source chars) and the share of summary facts found in the source."""
    from casemgr.ai.summarize import summarize

    ratios, found, total = [], 0, 0
    for text in list(texts)[:limit]:
        s = summarize(text)
        if not text.strip():
            continue
        ratios.append(len(s.summary) / max(len(text), 1))
        src = normalise(text)
        facts = s.key_facts.amounts + s.key_facts.dates + s.key_facts.ids + s.key_facts.parties
        for f in facts:
            total += 1
            found += f.lower() in text.lower()
        # Content words of the summary that the source does not contain count as unsupported facts.
        for w in normalise(s.summary).split():
            total += 1
            found += w in src
    return {
        "n": len(ratios),
        "compression_ratio": round(float(np.mean(ratios)), 4) if ratios else None,
        "facts_in_source": round(found / total, 4) if total else None,
    }
