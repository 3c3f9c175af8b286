"""Floor and path measured in alternating rounds, so load drift on a shared machine weighs on both alike.

A floor measured first and the path after it compares two different moments: on a shared 2-core machine another
process's burst can land on either, and the ratio moved by ±0.1 between runs (issue 23). Here both servers are
up at once and the requests are sent in rounds of equal size in ABBA order (floor, path, path, floor, floor,
path, ...): each pair of adjacent rounds saw about the same background load, and a linear drift cancels out over
two pairs.

The reported ratio is the MEDIAN of the per-pair ratios, not total/total: a burst that lands on one round skews
one pair, which the median discards, while total/total weights every round by its duration, so a slowed-down
round (the one the burst hit) weighs more than the others. Totals (`cases_per_s`, `floor_per_s`) and their
quotient (`ratio_total`) are reported next to it, with every round's own figures.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from casemgr.bench.loadgen import percentile as _pct

FLOOR, PATH = "floor", "path"


@dataclass
class Round:
    """One measured round: `ok` requests answered successfully in `elapsed_s`, with their latencies."""

    side: str
    n: int
    ok: int
    elapsed_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def per_s(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


def pairs_for(n: int, wanted: int, min_round: int) -> int:
    """How many pairs of rounds `n` requests per side allow, each round at least `min_round` requests."""
    return max(1, min(wanted, n // max(1, min_round)))


def schedule(n: int, pairs: int) -> list[tuple[int, str, int, int]]:
    """(pair, side, first index, count) in ABBA order; each side sends indices 0..n-1 once in all."""
    sizes = [n // pairs + (1 if k < n % pairs else 0) for k in range(pairs)]
    out: list[tuple[int, str, int, int]] = []
    start = 0
    for k, size in enumerate(sizes):
        sides = (FLOOR, PATH) if k % 2 == 0 else (PATH, FLOOR)
        out += [(k, side, start, size) for side in sides]
        start += size
    return out


def settle_before_round() -> None:
    """Unmeasured, before each round: fold SQLite's WAL back into the database, then write out the host's dirty
    pages.

    Both sides write to one database, and the commit that finds the WAL past its auto-checkpoint size copies every
    page in it: after a path round (many pages per case) the floor's next commits would pay for the path's pages.
    Likewise every commit's fsync waits behind the dirty pages already queued for the disk (a checkpoint's, or a
    large data dir written just before). Emptying both first leaves each round only its own writes to pay for;
    `bench soak` syncs before its traffic for the same reason.
    """
    from casemgr import walcheckpoint
    from casemgr.config import get_settings
    from casemgr.db import get_engine

    if get_settings().is_sqlite:
        walcheckpoint.truncate(str(get_engine(write=True).url.database))
    os.sync()


def run_pairs(n: int, pairs: int, measure: Callable[[str, int, int], Round],
              before_round: Callable[[], None] | None = settle_before_round) -> list[tuple[int, Round]]:
    """Call `measure(side, first, count)` for each round of the schedule (after `before_round`, unmeasured);
    returns (pair, round) in order."""
    out = []
    for k, side, first, count in schedule(n, pairs):
        if before_round is not None:
            before_round()
        out.append((k, measure(side, first, count)))
    return out


def _side(rounds: list[Round]) -> dict[str, float]:
    ok = sum(r.ok for r in rounds)
    elapsed = sum(r.elapsed_s for r in rounds)
    lat = [x for r in rounds for x in r.latencies_ms]
    return {"per_s": round(ok / elapsed, 1) if elapsed else 0.0, "p50_ms": round(_pct(lat, 50), 2),
            "p95_ms": round(_pct(lat, 95), 2), "p99_ms": round(_pct(lat, 99), 2),
            "errors": sum(r.errors for r in rounds)}


def summarise(measured: list[tuple[int, Round]]) -> dict[str, Any]:
    """Totals per side, per-pair ratios, and the ratio as their median (see the module docstring)."""
    by_pair: dict[int, dict[str, Round]] = {}
    for k, r in measured:
        by_pair.setdefault(k, {})[r.side] = r
    rounds = []
    ratios = []
    for k in sorted(by_pair):
        floor, path = by_pair[k][FLOOR], by_pair[k][PATH]
        ratio = path.per_s / floor.per_s if floor.per_s else None
        if ratio is not None:
            ratios.append(ratio)
        rounds.append({"pair": k, "n": path.n, "floor_per_s": round(floor.per_s, 1), "per_s": round(path.per_s, 1),
                       "ratio": round(ratio, 3) if ratio is not None else None,
                       "first": FLOOR if k % 2 == 0 else PATH})
    floor_side = _side([r for _, r in measured if r.side == FLOOR])
    path_side = _side([r for _, r in measured if r.side == PATH])
    return {
        "cases_per_s": path_side["per_s"], "floor_per_s": floor_side["per_s"],
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
        "ratio_total": round(path_side["per_s"] / floor_side["per_s"], 3) if floor_side["per_s"] else None,
        "p50_ms": path_side["p50_ms"], "p95_ms": path_side["p95_ms"], "p99_ms": path_side["p99_ms"],
        "floor_p50_ms": floor_side["p50_ms"], "floor_p99_ms": floor_side["p99_ms"],
        "errors": path_side["errors"], "floor_errors": floor_side["errors"],
        "ratio_method": "median of per-pair ratios, rounds in ABBA order", "rounds": rounds,
    }
