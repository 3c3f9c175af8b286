"""Per-class thresholds proposed from calibration data, for `casemgr policy suggest-thresholds`.

The calibration data are the out-of-fold (predicted, true, confidence) rows stored in each artefact's
metadata at training time, or any labelled CSV scored with the installed model. For each class we
propose the lowest threshold at which the AI's own decisions for that class reach the target precision:
a class that never gets there should stay a suggestion to its owner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casemgr.ai import classifier
from casemgr.ai.calibration import threshold_for_precision
from casemgr.ai.targets import get


def calibration_rows(target: str = "category", data: Path | None = None, text_col: str = "narrative",
                     label_col: str | None = None) -> tuple[list[tuple[str, str, float]], str]:
    tgt = get(target)
    cm = classifier.default_model(prefix=tgt.prefix)
    if data is not None:
        texts, labels = classifier.read_labelled_csv(data, text_col, label_col or tgt.label_column)
        preds = cm.predict(texts)
        return [(p[0], t, p[1]) for p, t in zip(preds, labels, strict=True)], f"{data.name} scored by {cm.version}"
    oof = (cm.meta.get("cv") or {}).get("oof")
    if not oof:
        raise ValueError(f"the installed {target} model ({cm.version}) carries no out-of-fold calibration data; "
                         "pass --data with a labelled CSV or retrain with `casemgr ai train`")
    return [(str(p), str(t), float(c)) for p, t, c in oof], f"out-of-fold predictions of {cm.version}"


def suggest(target_precision: float, target: str = "category", data: Path | None = None,
            min_support: int = 5) -> dict[str, Any]:
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("--target-precision must be in (0, 1]")
    rows, source = calibration_rows(target, data)
    preds = [r[0] for r in rows]
    truth = [r[1] for r in rows]
    confs = [r[2] for r in rows]
    per_class = {lab: threshold_for_precision(confs, preds, truth, lab, target_precision, min_support)
                 for lab in sorted(set(truth) | set(preds))}
    proposed = {lab: v["threshold"] for lab, v in per_class.items()}
    unreachable = sorted(lab for lab, thr in proposed.items() if thr is None)
    return {
        "target": target,
        "target_precision": target_precision,
        "source": source,
        "n": len(rows),
        "thresholds_by_category": {k: v for k, v in proposed.items() if v is not None},
        "unreachable": unreachable,  # keep these as suggestions: no threshold reaches the precision
        "per_class": per_class,
    }
