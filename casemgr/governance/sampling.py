"""Unbiased override rates under stratified review sampling (issue 21).

Applied decisions are sampled for review at their stratum's rate (decide.sample_rate_for): low confidence and
rare categories are oversampled, so the raw override rate of the reviewed sample over-represents them. Each
reviewed decision stands for 1/rate decisions of the population (inverse-probability weighting); the ratio
estimator sum(w * overridden) / sum(w) (Hajek) is then consistent for the population's override rate.
"""

from __future__ import annotations

from collections.abc import Iterable


def weighted_override_rate(reviewed: Iterable[tuple[bool, float | None]]) -> float | None:
    """`reviewed`: (overridden?, sample rate) per reviewed sampled decision. None when nothing was reviewed.

    A decision without a stored rate (recorded before stratified sampling) weighs 1, as the raw rate does."""
    num = den = 0.0
    for overridden, rate in reviewed:
        w = 1.0 / rate if rate else 1.0
        den += w
        num += w * overridden
    return num / den if den else None


def raw_override_rate(reviewed: Iterable[tuple[bool, float | None]]) -> float | None:
    items = list(reviewed)
    return sum(o for o, _ in items) / len(items) if items else None
