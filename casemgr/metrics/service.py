"""KPIs for process owners, from pre-aggregated tables so the dashboard stays fast at millions of cases.

`refresh()` (worker job `metrics.refresh`, or on first use) adds the stage visits finished since the last run to
metric_stage_daily (exit day x case type x stage x log-scale duration bucket, with SLA met/breached counts;
incrementally, in short chunks: casemgr/metrics/rollup.py) and
stores the live aggregates (backlog, SLA state, exceptions, AI outcomes, longest-waiting cases) in one snapshot.
`dashboard()` then only sums a few thousand rollup rows for the chosen period.

Cycle-time percentiles come from the buckets: each bucket spans a factor of 1.05, so a reported median or p90
is within 2.5 % of the exact value (the representative value is the bucket's geometric midpoint).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from casemgr.ai.models import AICall
from casemgr.audit.models import AuditEvent
from casemgr.audit.service import canonical
from casemgr.cases.models import Case, StageHistory
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.governance.models import AIDecision
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.metrics import live, rollup
from casemgr.metrics.models import MetricSnapshot, MetricStageDaily
from casemgr.metrics.rollup import RATIO

LIVE = "live"
STATE = rollup.STATE
AI_LATENCY_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
REVIEWED = ("accepted", "overridden", "rejected")
PERIODS = (7, 30, 90, 365)
PUT_BUDGET_S = 0.01  # snapshot rows stored per write transaction: until this much time is spent


def bucket_value(b: int) -> float:
    return 0.0 if b <= 0 else RATIO ** (b - 0.5)


def percentile(buckets: list[tuple[int, int]], p: float) -> float | None:
    """Nearest-rank percentile from (bucket, count) pairs."""
    total = sum(n for _, n in buckets)
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for b, n in sorted(buckets):
        seen += n
        if seen >= rank:
            return bucket_value(b)
    return bucket_value(max(b for b, _ in buckets))


def count_if(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


def _json_true(session: Session, col: Any, key: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "sqlite":
        return func.json_extract(col, f"$.{key}") == 1
    return col.op("->>")(key) == "true"


# ---------------------------------------------------------------- refresh


def refresh_rollups(session: Session, *, full: bool = False) -> int:
    """Add the visits finished since the last refresh to metric_stage_daily in the caller's transaction (`full`:
    rebuild from every visit). Returns the visits added. See casemgr/metrics/rollup.py."""
    if full:
        rollup.start_rebuild_in_session(session)
    return rollup.roll_in_session(session)


def compute_live(session: Session, at: datetime) -> dict[str, Any]:
    """The live figures recomputed from every row (one pass over each table, all in SQL): the reference that the
    counters of casemgr/metrics/live.py must equal (a refresh reads those; this costs ~12 s of CPU at 1M cases)."""
    week_ago = at - timedelta(days=7)
    q_total, q_held, q_week = session.execute(
        select(func.count(), count_if(QuarantinedMessage.status == "held"),
               count_if(QuarantinedMessage.created_at >= week_ago))
    ).one()
    out_failed, out_outbox = session.execute(
        select(count_if(Message.status == "failed"), count_if(Message.status == "outbox"))
        .where(Message.direction == "outbound")
    ).one()
    cases_total, ai_unavailable, fallbacks = session.execute(
        select(func.count(), count_if(Case.ai_status == "unavailable"),
               count_if(_json_true(session, Case.rules_result, "default_used")))
    ).one()
    ai = live.tally_decisions(session.execute(
        select(AIDecision.kind, AIDecision.outcome, AIDecision.review_status, func.count())
        .group_by(AIDecision.kind, AIDecision.outcome, AIDecision.review_status)).tuples().all())
    calls_q = select(AICall.capability, AICall.provider, func.count(), func.sum(AICall.latency_ms),
                     count_if(AICall.error.is_not(None)), *[count_if(AICall.latency_ms <= b) for b in AI_LATENCY_BUCKETS_MS]
                     ).group_by(AICall.capability, AICall.provider)
    ai_calls = [
        {"capability": cap, "provider": prov, "n": int(n), "latency_ms_sum": float(s or 0), "errors": int(e or 0),
         "le": [int(x or 0) for x in les]}
        for cap, prov, n, s, e, *les in session.execute(calls_q).all()
    ]
    by_type = {ct: int(n) for ct, n in session.execute(select(Case.case_type, func.count()).group_by(Case.case_type))}
    visits_by_type = {ct: int(n) for ct, n in session.execute(
        select(StageHistory.case_type, func.count()).group_by(StageHistory.case_type))}
    transitions = sum(visits_by_type.values()) - cases_total
    breach_events = session.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sla.breached")).scalar_one()
    return {
        "at": at.isoformat(), **live.open_figures(session, at),
        "exceptions": {"quarantine_total": int(q_total or 0), "quarantine_held": int(q_held or 0),
                       "quarantine_last_7d": int(q_week or 0), "ai_unavailable": int(ai_unavailable or 0),
                       "rules_fallbacks": int(fallbacks or 0), "outbound_failed": int(out_failed or 0),
                       "outbound_in_outbox": int(out_outbox or 0)},
        "ai_decisions": {k: dict(v) for k, v in ai.items()}, "ai_calls": ai_calls,
        "totals": {"cases": int(cases_total), "transitions": int(max(transitions, 0)),
                   "sla_breach_events": int(breach_events)},
        "cases_by_type": by_type,
        "transitions_by_type": {ct: max(visits_by_type.get(ct, 0) - n, 0) for ct, n in by_type.items()},
    }


def _put(session: Session, name: str, data: dict[str, Any], at: datetime) -> None:
    snap = session.get(MetricSnapshot, name)
    if snap is None:
        session.add(MetricSnapshot(name=name, computed_at=at, data=data))
    else:
        snap.data = data
        snap.computed_at = at
        session.add(snap)


def compute_views(session: Session, at: datetime) -> dict[str, dict[str, Any]]:
    """The standard views, computed once per refresh so the page only reads one row at any scale."""
    return {_view_key(days, ct): canonical(dashboard(session, days=days, case_type=ct, at=at, cached=False))
            for days in PERIODS for ct in (None, *get_registry().case_types)}


def refresh(session: Session, *, at: datetime | None = None, full: bool = False) -> dict[str, Any]:
    """Add the newly finished stage visits to the rollups (`full`: rebuild them and recount the live counters) and
    recompute the live figures and the standard views, all in the caller's session (tests, small databases).
    See refresh_in_steps()."""
    at = at or now()
    visits = refresh_rollups(session, full=full)
    if full or not live.state(session)["ready"]:
        live.reset_in_session(session)
    else:
        while live.fold_chunk(session, live.MAX_CHUNK):
            pass
    data = live.live_figures(session, at)
    _put(session, LIVE, data, at)
    session.flush()
    for key, view in compute_views(session, at).items():
        _put(session, key, view, at)
    rollup.put_state(session, {"last": at.isoformat(), "visits_rolled": visits}, at)
    return data


def refresh_in_steps(*, at: datetime | None = None, full: bool = False, rolled: int = 0) -> dict[str, Any]:
    """The same as refresh() in short write transactions (issue 23): the newly finished visits are added to the
    rollups in chunks of about 20 ms each (casemgr/metrics/rollup.py), the live counters take in the changes since
    the last run (casemgr/metrics/live.py), the live figures and the views are read in read transactions and stored
    in short writes. `full` (an explicit admin command) rebuilds the rollups from every visit, still in short
    transactions, and recounts the live counters from the tables. Idempotent; safe on several workers at once.
    `rolled`: visits the caller already added in this run (reported with the state's visits_rolled)."""
    from casemgr.db import read_session

    at = at or now()
    if full:
        rollup.start_rebuild()
    stats = rollup.roll_pending()
    with read_session() as rs:
        ready = live.state(rs)["ready"]
    if full or not ready:
        live.reset()
    else:
        live.fold()
    with read_session() as rs:
        data = canonical(live.live_figures(rs, at))
    # The views read the live snapshot (dashboard -> live_snapshot), so it is stored first, in its own short write:
    # stored with the views at the end, the views were built from the previous snapshot, and with none yet each
    # view ran a full in-session refresh under the write lock (9.3 s write transactions in the 1M soak).
    _put_all([(LIVE, data)], at, None)
    with read_session() as rs:
        views = compute_views(rs, at)
    _put_all(list(views.items()), at, {"last": at.isoformat(), "visits_rolled": rolled + stats["visits"]})
    return data


def _put_all(items: list[tuple[str, dict[str, Any]]], at: datetime, state: dict[str, Any] | None) -> None:
    """Store snapshots in write transactions of about PUT_BUDGET_S each (one held them all: up to 337 ms in the
    1M soak); the rollup state goes with the last."""
    import time

    from casemgr.db import write_session

    i = 0
    while True:
        with write_session() as ws:
            started = time.monotonic()
            while i < len(items) and (time.monotonic() - started < PUT_BUDGET_S):
                _put(ws, items[i][0], items[i][1], at)
                ws.flush()
                i += 1
            if i >= len(items):
                if state is not None:
                    rollup.put_state(ws, state, at)
                return


def live_snapshot(session: Session) -> tuple[dict[str, Any], datetime]:
    snap = session.get(MetricSnapshot, LIVE)
    if snap is None:
        from casemgr.db import write_session

        # First use (no worker has run yet): compute now; the reader's own transaction cannot see the new row.
        at = now()
        with write_session() as ws:
            data = refresh(ws, at=at)
        return canonical(data), at
    return snap.data, snap.computed_at


# ---------------------------------------------------------------- the dashboard


def _rate(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def _view_key(days: int, case_type: str | None) -> str:
    return f"view:{days}:{case_type or '*'}"


def dashboard(session: Session, *, days: int = 30, case_type: str | None = None,
              at: datetime | None = None, cached: bool = True) -> dict[str, Any]:
    """The dashboard figures; standard periods come precomputed from the last refresh."""
    if cached and at is None and days in PERIODS:
        snap = session.get(MetricSnapshot, _view_key(days, case_type))
        if snap is not None:
            return dict(snap.data)
    live, computed_at = live_snapshot(session)
    at = at or now()
    since = (at - timedelta(days=days)).date()
    flt = [MetricStageDaily.day >= since]
    if case_type:
        flt.append(MetricStageDaily.case_type == case_type)
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for ct, st, b, n, secs, ws, br in session.execute(
        select(MetricStageDaily.case_type, MetricStageDaily.stage, MetricStageDaily.bucket,
               func.sum(MetricStageDaily.n), func.sum(MetricStageDaily.seconds), func.sum(MetricStageDaily.with_sla),
               func.sum(MetricStageDaily.breached))
        .where(*flt).group_by(MetricStageDaily.case_type, MetricStageDaily.stage, MetricStageDaily.bucket)
    ).all():
        d = per.setdefault((ct, st), {"buckets": [], "n": 0, "seconds": 0.0, "with_sla": 0, "breached": 0})
        d["buckets"].append((int(b), int(n)))
        d["n"] += int(n)
        d["seconds"] += float(secs)
        d["with_sla"] += int(ws)
        d["breached"] += int(br)
    order = {(ct.name, sd.name): (i, j) for i, ct in enumerate(get_registry().case_types.values())
             for j, sd in enumerate(ct.stages)}
    cycle = []
    for (ct, st), d in sorted(per.items(), key=lambda kv: order.get(kv[0], (99, 99))):
        cycle.append({"case_type": ct, "stage": st, "visits": d["n"],
                      "median_h": round((percentile(d["buckets"], 0.5) or 0) / 3600, 2),
                      "p90_h": round((percentile(d["buckets"], 0.9) or 0) / 3600, 2),
                      "mean_h": round(d["seconds"] / d["n"] / 3600, 2) if d["n"] else None,
                      "with_sla": d["with_sla"], "breached": d["breached"],
                      "breach_rate": _rate(d["breached"], d["with_sla"])})
    # Time lost per stage: finished visits in the period plus the age of the visits still open.
    lost: dict[tuple[str, str], float] = defaultdict(float)
    for row in cycle:
        lost[(row["case_type"], row["stage"])] += per[(row["case_type"], row["stage"])]["seconds"]
    for row in live["open_ages"]:
        if not case_type or row["case_type"] == case_type:
            lost[(row["case_type"], row["stage"])] += row["age_s"]
    bottlenecks = [{"case_type": ct, "stage": st, "hours_lost": round(s / 3600, 1)}
                   for (ct, st), s in sorted(lost.items(), key=lambda kv: -kv[1]) if s > 0][:10]
    trend = [{"day": d.isoformat() if isinstance(d, date) else str(d), "with_sla": int(w), "breached": int(b),
              "breach_rate": _rate(int(b), int(w))}
             for d, w, b in session.execute(
                 select(MetricStageDaily.day, func.sum(MetricStageDaily.with_sla), func.sum(MetricStageDaily.breached))
                 .where(*flt).group_by(MetricStageDaily.day).order_by(MetricStageDaily.day)).all()]
    backlog = [r for r in live["backlog"] if not case_type or r["case_type"] == case_type]
    by_stage: dict[tuple[str, str], int] = defaultdict(int)
    by_queue: dict[str, int] = defaultdict(int)
    for r in backlog:
        by_stage[(r["case_type"], r["stage"])] += r["n"]
        by_queue[r["queue"]] += r["n"]
    sla_rows = [r for r in live["sla"] if not case_type or r["case_type"] == case_type]
    open_with_sla = sum(r["with_sla"] for r in sla_rows)
    breached_now = sum(r["breached"] for r in sla_rows)
    period_with = sum(r["with_sla"] for r in cycle)
    period_breached = sum(r["breached"] for r in cycle)
    ai_rows = []
    for kind, d in sorted(live["ai_decisions"].items()):
        reviewed = sum(d.get(f"review:{s}", 0) for s in REVIEWED)
        sugg_reviewed = sum(d.get(f"suggested_review:{s}", 0) for s in REVIEWED)
        ai_rows.append({
            "kind": kind, "decisions": d.get("total", 0), "applied": d.get("outcome:applied", 0),
            "suggested": d.get("outcome:suggested", 0), "reviewed": reviewed,
            "auto_apply_rate": _rate(d.get("outcome:applied", 0), d.get("total", 0)),
            "acceptance_rate": _rate(d.get("suggested_review:accepted", 0), sugg_reviewed),
            "override_rate": _rate(d.get("review:overridden", 0), reviewed),
        })
    return {
        "computed_at": computed_at.isoformat(), "period_days": days, "case_type": case_type,
        "backlog_by_stage": [{"case_type": ct, "stage": st, "open": n} for (ct, st), n in
                             sorted(by_stage.items(), key=lambda kv: order.get(kv[0], (99, 99)))],
        "backlog_by_queue": [{"queue": q, "open": n} for q, n in sorted(by_queue.items(), key=lambda kv: -kv[1])],
        "cycle_time": cycle, "bottlenecks": bottlenecks, "longest_waiting": [
            r for r in live["longest_waiting"] if not case_type or r["case_type"] == case_type][:10],
        "sla": {"open_with_sla": open_with_sla, "breached_now": breached_now,
                "breach_rate_now": _rate(breached_now, open_with_sla), "period_with_sla": period_with,
                "period_breached": period_breached, "period_breach_rate": _rate(period_breached, period_with)},
        "breach_trend": trend, "exceptions": live["exceptions"], "ai": ai_rows,
    }


TABLES = ("backlog_by_stage", "backlog_by_queue", "cycle_time", "bottlenecks", "longest_waiting", "breach_trend", "ai",
          "exceptions")


def table_rows(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """One dashboard table as rows (for CSV export)."""
    value = data[name]
    if isinstance(value, dict):
        return [{"measure": k, "value": v} for k, v in value.items()]
    return list(value)
