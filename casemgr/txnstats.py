"""How long background jobs hold write transactions (issue 23: none longer than 50 ms at 1M cases).

The worker labels the work of each job with its kind (`labelled`); every write session opened under a label records
the time from its BEGIN (on SQLite: once BEGIN IMMEDIATE holds the write lock) to the end of its commit or rollback,
as wall time and as the thread's CPU time (SQLite works in the thread: on a loaded host the CPU time is the work,
the wall time is the work plus the wait for a core).
Unlabelled sessions (requests, intake) record nothing and pay one context-variable read per transaction.
`summary()` gives count, max, p95 and how many exceeded the bound, per label; with CASEMGR_TXN_STATS_FILE set the
worker writes it (with the raw durations, so several workers can be merged) for `casemgr bench soak`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

BOUND_MS = 50.0
KEEP = 50_000  # durations kept per label (the max is kept apart, so it is never lost)

_label: ContextVar[str | None] = ContextVar("casemgr_txn_label", default=None)
_lock = threading.Lock()
_ms: dict[str, list[float]] = {}
_cpu: dict[str, list[float]] = {}
_max: dict[str, float] = {}
_n: dict[str, int] = {}
_last_dump = 0.0


@contextmanager
def labelled(name: str) -> Iterator[None]:
    token = _label.set(name)
    try:
        yield
    finally:
        _label.reset(token)


def began(info: dict[str, Any]) -> None:
    """A write transaction began (SQLAlchemy's after_begin, on the session's info dict)."""
    if _label.get() is not None:
        info["txn_t0"] = (time.perf_counter(), time.thread_time())


def ended(info: dict[str, Any]) -> None:
    t0 = info.pop("txn_t0", None)
    label = _label.get()
    if t0 is None or label is None:
        return
    record(label, (time.perf_counter() - t0[0]) * 1000.0, (time.thread_time() - t0[1]) * 1000.0)


def record(label: str, ms: float, cpu_ms: float = 0.0) -> None:
    with _lock:
        values = _ms.setdefault(label, [])
        if len(values) < KEEP:
            values.append(ms)
            _cpu.setdefault(label, []).append(cpu_ms)
        _max[label] = max(_max.get(label, 0.0), ms)
        _n[label] = _n.get(label, 0) + 1


def reset() -> None:
    with _lock:
        _ms.clear()
        _cpu.clear()
        _max.clear()
        _n.clear()


def _p95(v: list[float]) -> float | None:
    return round(v[int(0.95 * (len(v) - 1))], 1) if v else None


def summarise(values: list[float], n: int | None = None, max_ms: float | None = None,
              cpu: list[float] | None = None) -> dict[str, Any]:
    """n, max_ms, p95_ms (wall), over_50ms (wall), cpu_max_ms and cpu_p95_ms (the thread's CPU time)."""
    v = sorted(values)
    c = sorted(cpu or [])
    return {"n": n if n is not None else len(v), "max_ms": round(max_ms if max_ms is not None else (v[-1] if v else 0.0), 1),
            "p95_ms": _p95(v), "over_50ms": sum(1 for x in v if x > BOUND_MS),
            "cpu_max_ms": round(c[-1], 1) if c else None, "cpu_p95_ms": _p95(c)}


def summary() -> dict[str, dict[str, Any]]:
    with _lock:
        return {label: summarise(list(_ms[label]), _n[label], _max[label], list(_cpu.get(label, [])))
                for label in sorted(_ms)}


def snapshot() -> dict[str, dict[str, Any]]:
    """Raw figures per label (mergeable across processes by `merge`)."""
    with _lock:
        return {label: {"n": _n[label], "max_ms": _max[label], "ms": list(_ms[label]), "cpu": list(_cpu.get(label, []))}
                for label in _ms}


def merge(snapshots: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        for label, d in snap.items():
            o = out.setdefault(label, {"n": 0, "max_ms": 0.0, "ms": [], "cpu": []})
            o["n"] += int(d["n"])
            o["max_ms"] = max(o["max_ms"], float(d["max_ms"]))
            o["ms"].extend(d["ms"])
            o["cpu"].extend(d.get("cpu", []))
    return {label: summarise(d["ms"], d["n"], d["max_ms"], d["cpu"]) for label, d in sorted(out.items())}


def dump(path: str | os.PathLike[str] | None, *, every_s: float = 0.0) -> None:
    """Write snapshot() to `path` atomically (at most once per `every_s`)."""
    global _last_dump
    if not path:
        return
    t = time.monotonic()
    if every_s and t - _last_dump < every_s:
        return
    _last_dump = t
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(snapshot()), encoding="utf-8")
    tmp.replace(target)
