"""Confidence that means what it says: per-class calibration and the calibration error we report.

A classifier's raw probabilities over- or under-state some classes more than others (a rare class
is often over-confident). Vector scaling fits one temperature plus one bias per class on
out-of-fold probabilities, so a confidence of 0.8 means "right about 8 times in 10" per class,
not only on average. `ece` is the expected calibration error of the top label (15 equal-width bins).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

_EPS = 1e-9


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, _EPS, 1.0))


def apply_vector_scaling(proba: np.ndarray, temperature: float, bias: Sequence[float] | None) -> np.ndarray:
    z = _log(proba) / temperature
    if bias is not None:
        z = z + np.asarray(bias, dtype=float)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_vector_scaling(proba: np.ndarray, y_idx: np.ndarray, l2: float = 0.01) -> tuple[float, list[float]]:
    """Temperature and per-class biases minimising out-of-fold log loss (small L2 keeps biases sane)."""
    k = proba.shape[1]
    logp = _log(proba)
    rows = np.arange(len(y_idx))

    def loss(theta: np.ndarray) -> float:
        t = np.exp(theta[0])  # log-parametrised: the temperature stays positive
        z = logp / t + theta[1:]
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - z[rows, y_idx]) + l2 * np.sum(theta[1:] ** 2))

    res = minimize(loss, np.zeros(k + 1), method="L-BFGS-B")
    theta = res.x if res.success or np.isfinite(res.fun) else np.zeros(k + 1)
    return float(np.exp(theta[0])), [round(float(b), 6) for b in theta[1:]]


def ece(confidences: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top label: sum over bins of |accuracy - confidence| x share."""
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if len(conf) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(ok[mask].mean() - conf[mask].mean())
    return round(float(total), 4)


def per_class_precision_at(confidences: Sequence[float], predicted: Sequence[str], truth: Sequence[str],
                           label: str, threshold: float) -> tuple[float | None, int]:
    """Precision of predictions of `label` whose confidence is at least `threshold`, and how many there are."""
    picked = [t == label for c, p, t in zip(confidences, predicted, truth, strict=True) if p == label and c >= threshold]
    if not picked:
        return None, 0
    return sum(picked) / len(picked), len(picked)


def threshold_for_precision(confidences: Sequence[float], predicted: Sequence[str], truth: Sequence[str],
                            label: str, target: float, min_support: int = 5) -> dict[str, float | int | None]:
    """Lowest threshold at which `label`'s precision reaches `target` with at least `min_support` predictions.

    Lowest, because every higher threshold sends more cases to people for nothing. None when no
    threshold reaches the target on this data: the class should stay a suggestion.
    """
    cands = sorted({round(c, 2) for c, p in zip(confidences, predicted, strict=True) if p == label})
    for thr in cands:
        prec, n = per_class_precision_at(confidences, predicted, truth, label, thr)
        if prec is not None and n >= min_support and prec >= target:
            covered = sum(1 for p in predicted if p == label)
            return {"threshold": thr, "precision": round(prec, 4), "support": n, "coverage": round(n / max(covered, 1), 4)}
    return {"threshold": None, "precision": None, "support": 0, "coverage": 0.0}
