"""The intake bench's paired rounds: ABBA order, every index sent once per side, ratio = median of pair ratios."""

from __future__ import annotations

import pytest

from casemgr.bench import paired

pytestmark = pytest.mark.no_db


def test_schedule_alternates_abba_and_covers_every_index_once_per_side() -> None:
    plan = paired.schedule(10, 4)
    assert [side for _, side, _, _ in plan] == ["floor", "path", "path", "floor"] * 2
    for side in ("floor", "path"):
        sent = [i for _, s, first, count in plan if s == side for i in range(first, first + count)]
        assert sent == list(range(10))
    assert [count for _, s, _, count in plan if s == "path"] == [3, 3, 2, 2]


def test_each_round_starts_after_the_hook() -> None:
    calls: list[str] = []

    def measure(side: str, first: int, count: int) -> paired.Round:
        calls.append(side)
        return paired.Round(side, count, count, 1.0)

    paired.run_pairs(4, 2, measure, before_round=lambda: calls.append("settle"))
    assert calls == ["settle", "floor", "settle", "path", "settle", "path", "settle", "floor"]


def test_pairs_for_keeps_rounds_large_enough() -> None:
    assert paired.pairs_for(2000, 8, 100) == 8
    assert paired.pairs_for(2000, 4, 500) == 4
    assert paired.pairs_for(900, 4, 500) == 1
    assert paired.pairs_for(8, 8, 100) == 1


def test_ratio_is_the_median_of_pair_ratios_not_total_over_total() -> None:
    # Pair 1's floor round was hit by a burst (10 s for 100 requests): total/total is dragged by it, the median not.
    rounds = {(0, "floor"): 1.0, (0, "path"): 1.5, (1, "path"): 1.6, (1, "floor"): 10.0,
              (2, "floor"): 1.0, (2, "path"): 1.4}

    def measure(side: str, first: int, count: int) -> paired.Round:
        k = first // 100
        return paired.Round(side, count, count, rounds[(k, side)], [float(k)] * count)

    res = paired.summarise(paired.run_pairs(300, 3, measure, before_round=None))
    assert [r["ratio"] for r in res["rounds"]] == [round(1 / 1.5, 3), round(10 / 1.6, 3), round(1 / 1.4, 3)]
    assert res["ratio"] == round(1 / 1.4, 3)
    assert res["floor_per_s"] == round(300 / 12.0, 1) and res["cases_per_s"] == round(300 / 4.5, 1)
    assert res["ratio_total"] == pytest.approx((300 / 4.5) / (300 / 12.0), abs=0.002)
    assert [r["first"] for r in res["rounds"]] == ["floor", "path", "floor"]
