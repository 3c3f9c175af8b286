"""Replay traces against a case type's design and aggregate what deviated (pure: no database).

A trace is one case's stage visits in time order. A case *conforms* when it started in the type's initial stage
and made only designed moves: exactly the traces that token-based replay fits on a Petri net built from the
designed transitions (one place per stage, a silent transition per designed move, and the case may stop in any
stage). The other figures read the same visits against the normal order of the stages (the order of the YAML):
a forward move over stages skips them, a move to an earlier stage is a back-transition, a stage entered again
is a rework loop whose later visits are time lost, and a move between stages of different owner roles is a
handoff whose delay runs until the receiving side's first work event (assignment, completed task or note) or,
without one, until the case left the stage.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from casemgr.conformance.enums import DeviationKind
from casemgr.conformance.model import Design

TOP = 10


@dataclass
class Visit:
    stage: str
    entered: float  # epoch seconds
    left: float | None  # None: the case is still in this stage


@dataclass
class Trace:
    case_id: int
    case_type: str
    visits: list[Visit]
    work: list[float] = field(default_factory=list)  # epoch seconds of work events, ascending
    version: str | None = None  # the case-types version the case is pinned to (None: the version in force)


@dataclass
class TraceResult:
    conforming: bool
    completed: bool
    wrong_start: bool
    undesigned: list[tuple[str, str]]
    skips: list[tuple[str, str, tuple[str, ...]]]
    backs: list[tuple[str, str]]
    rework: dict[str, tuple[int, float]]  # stage -> (extra visits, seconds in them)
    handoffs: list[tuple[str, str, float, bool]]  # (from role, to role, seconds, still waiting)


def _first_at_or_after(times: list[float], start: float, end: float | None) -> float | None:
    import bisect

    i = bisect.bisect_left(times, start)
    if i < len(times) and (end is None or times[i] < end):
        return times[i]
    return None


def replay(design: Design, trace: Trace, at: float) -> TraceResult:
    visits = trace.visits
    stages = [v.stage for v in visits]
    wrong_start = bool(stages) and stages[0] != design.initial
    undesigned, skips, backs = [], [], []
    handoffs: list[tuple[str, str, float, bool]] = []
    for prev, cur in zip(visits, visits[1:], strict=False):
        a, b = prev.stage, cur.stage
        if (a, b) not in design.moves:
            undesigned.append((a, b))
        skipped = design.skipped(a, b)
        if skipped:
            skips.append((a, b, tuple(skipped)))
        if design.is_back(a, b):
            backs.append((a, b))
        ra, rb = design.owner.get(a), design.owner.get(b)
        if ra and rb and ra != rb and b not in design.finals:
            picked = _first_at_or_after(trace.work, cur.entered, cur.left)
            if picked is not None:
                handoffs.append((ra, rb, picked - cur.entered, False))
            elif cur.left is not None:
                handoffs.append((ra, rb, cur.left - cur.entered, False))
            else:
                handoffs.append((ra, rb, max(at - cur.entered, 0.0), True))
    rework: dict[str, tuple[int, float]] = {}
    seen: set[str] = set()
    for v in visits:
        if v.stage in seen:
            n, secs = rework.get(v.stage, (0, 0.0))
            lost = 0.0 if v.stage in design.finals else max((v.left if v.left is not None else at) - v.entered, 0.0)
            rework[v.stage] = (n + 1, secs + lost)
        seen.add(v.stage)
    return TraceResult(
        conforming=bool(stages) and not wrong_start and not undesigned,
        completed=bool(stages) and stages[-1] in design.finals,
        wrong_start=wrong_start, undesigned=undesigned, skips=skips, backs=backs, rework=rework,
        handoffs=handoffs,
    )


def _pctl(sorted_values: list[float], p: float) -> float:
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def _h(seconds: float) -> float:
    return round(seconds / 3600.0, 2)


class Aggregate:
    """Figures of one case type, fed one trace at a time (memory: counters, plus one duration per handoff)."""

    def __init__(self, design: Design, at: float) -> None:
        self.design, self.at = design, at
        self.cases = self.conforming = self.completed = self.completed_conforming = self.with_rework = 0
        self.visited: Counter[str] = Counter()
        self.deviation_cases: Counter[tuple[str, str]] = Counter()
        self.undesigned: Counter[tuple[str, str]] = Counter()
        self.skip_moves: Counter[tuple[str, str]] = Counter()
        self.backs: Counter[tuple[str, str]] = Counter()
        self.rework_cases: Counter[str] = Counter()
        self.rework_visits: Counter[str] = Counter()
        self.rework_seconds: defaultdict[str, float] = defaultdict(float)
        self.handoffs: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        self.handoffs_waiting: Counter[tuple[str, str]] = Counter()

    def add(self, trace: Trace, design: Design | None = None) -> TraceResult:
        """Replay against `design` (the case's pinned version of the type) or the type's design in force."""
        r = replay(design or self.design, trace, self.at)
        self.cases += 1
        self.conforming += r.conforming
        self.completed += r.completed
        self.completed_conforming += r.conforming and r.completed
        self.with_rework += bool(r.rework)
        self.visited.update({v.stage for v in trace.visits})
        kinds: set[tuple[str, str]] = set()
        if r.wrong_start:
            kinds.add((DeviationKind.WRONG_START, trace.visits[0].stage))
        for a, b in r.undesigned:
            kinds.add((DeviationKind.UNDESIGNED_MOVE, f"{a} → {b}"))
        self.undesigned.update(set(r.undesigned))
        for _, _, skipped in r.skips:
            kinds.update((DeviationKind.SKIPPED_STAGE, s) for s in skipped)
        self.skip_moves.update({(a, b) for a, b, _ in r.skips})
        for a, b in set(r.backs):
            kinds.add((DeviationKind.BACK_TRANSITION, f"{a} → {b}"))
            self.backs[(a, b)] += 1
        for stage, (n, secs) in r.rework.items():
            kinds.add((DeviationKind.REWORK_LOOP, stage))
            self.rework_cases[stage] += 1
            self.rework_visits[stage] += n
            self.rework_seconds[stage] += secs
        self.deviation_cases.update(kinds)
        for ra, rb, secs, waiting in r.handoffs:
            if waiting:
                self.handoffs_waiting[(ra, rb)] += 1
            else:
                self.handoffs[(ra, rb)].append(secs)
        return r

    def _moves(self, counter: Counter[tuple[str, str]], **extra: Any) -> list[dict[str, Any]]:
        return [{"from": a, "to": b, "cases": n, **{k: f(a, b) for k, f in extra.items()}}
                for (a, b), n in counter.most_common(TOP)]

    def result(self) -> dict[str, Any]:
        d = self.design
        never = [s for s in d.stages if self.visited[s] == 0]
        deviations = [{"kind": str(k), "what": w, "cases": n,
                       "share": round(n / self.cases, 4) if self.cases else None}
                      for (k, w), n in sorted(self.deviation_cases.items(), key=lambda kv: (-kv[1], kv[0]))][:TOP]
        deviations += [{"kind": str(DeviationKind.NEVER_USED_STAGE), "what": s, "cases": 0, "share": 0.0}
                       for s in never] if self.cases else []
        pairs = sorted(set(self.handoffs) | set(self.handoffs_waiting))
        handoffs: list[dict[str, Any]] = []
        for pair in pairs:
            vals = sorted(self.handoffs.get(pair, []))
            handoffs.append({
                "from_role": pair[0], "to_role": pair[1], "handoffs": len(vals),
                "waiting_now": self.handoffs_waiting[pair],
                "median_h": _h(_pctl(vals, 0.5)) if vals else None, "p90_h": _h(_pctl(vals, 0.9)) if vals else None,
                "mean_h": _h(sum(vals) / len(vals)) if vals else None,
            })
        handoffs.sort(key=lambda h: -(h["mean_h"] or 0))
        rework = [{"stage": s, "cases": n, "extra_visits": self.rework_visits[s],
                   "hours_lost": _h(self.rework_seconds[s])}
                  for s, n in sorted(self.rework_cases.items(), key=lambda kv: (-self.rework_seconds[kv[0]], kv[0]))]
        return {
            "case_type": d.case_type,
            "cases": self.cases,
            "conforming": self.conforming,
            "conformance": round(self.conforming / self.cases, 6) if self.cases else None,
            "completed": self.completed,
            "completed_conforming": self.completed_conforming,
            "deviations": deviations,
            "undesigned_moves": self._moves(self.undesigned),
            "skips": self._moves(self.skip_moves, skipped=lambda a, b: d.skipped(a, b)),
            "back_transitions": self._moves(self.backs, designed=lambda a, b: (a, b) in d.moves),
            "rework": rework,
            "cases_with_rework": self.with_rework,
            "rework_hours_lost": _h(sum(self.rework_seconds.values())),
            "never_used_stages": never,
            "handoffs": handoffs,
        }


def analyse(designs: dict[str, Design], traces: Iterable[Trace], at: float,
            pinned: Callable[[Trace], Design | None] | None = None) -> dict[str, dict[str, Any]]:
    """Per case type (every designed type, also those with no case yet). `pinned` gives the design a case runs on
    (its pinned case-types version); the figures about the type itself (never-used stages) use `designs`."""
    aggs = {name: Aggregate(design, at) for name, design in designs.items()}
    for t in traces:
        agg = aggs.get(t.case_type)
        if agg is not None and t.visits:  # a type no longer in case-types.yaml: nothing to compare it with
            agg.add(t, pinned(t) if pinned else None)
    return {name: agg.result() for name, agg in aggs.items()}
