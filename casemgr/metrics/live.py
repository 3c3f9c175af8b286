"""The dashboard's live figures at a cost that follows the changes since the last refresh (issue 23).

Whole-table figures (cases per type, AI status and rules fallbacks, stage visits per type, AI decisions per
kind/outcome/review, AI calls with latency buckets, quarantine, failed/outbox outbound mail, SLA breach events) are
running totals: database triggers (migration 0024) write one metric_deltas row per change of a counted row, in
the transaction of that change, whatever code made it; `fold()` moves the deltas into metric_counters in short
write transactions; `current_rows()` reads counters plus the deltas not yet folded, so a reader is exact at its own
snapshot. The open backlog (per stage and queue, ages, SLA state, longest waiting) is read through the partial
indexes ix_cases_open_backlog (covering, in group-by order) and ix_cases_open_entered: cost follows the open
cases, never the closed ones. Quarantined mail of the last 7 days comes from quarantine.created_at's index.

`live_figures()` returns exactly what `service.compute_live()` (the full recompute) returns. The counters start
uninitialised (state row "live_state"); `reset()` (first refresh, `casemgr metrics refresh --full`) counts the
tables once: on SQLite in a read snapshot, then swapped in with a short write that keeps the deltas committed
after the snapshot (ids above the snapshot's highest; AUTOINCREMENT never reuses one); on PostgreSQL in one
transaction that holds metric_deltas against inserts, so every change either is in the count or leaves its delta.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, text, union_all
from sqlmodel import Session, col

from casemgr.metrics.models import MetricCounter, MetricDelta, MetricSnapshot

STATE = "live_state"
OPEN = "open"  # = CaseStatus.OPEN, written into the statements: a partial index needs the literal
LATENCY_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # = service.AI_LATENCY_BUCKETS_MS
TXN_BUDGET_S = 0.02  # a fold chunk's write transaction (the bound is 50 ms)
FIRST_CHUNK = 500
MAX_CHUNK = 5000
Row = tuple[str, str, str, str, int, int, int, float]  # metric, k1, k2, k3, n, a, b, v
_DIMS = ("metric", "k1", "k2", "k3")


# ---------------------------------------------------------------- state


def state(session: Session) -> dict[str, Any]:
    snap = session.get(MetricSnapshot, STATE)
    data = dict(snap.data) if snap is not None else {}
    data.setdefault("ready", False)
    data.setdefault("folds", 0)
    return data


def _put_state(session: Session, changes: dict[str, Any]) -> None:
    from casemgr.clock import now

    snap = session.get(MetricSnapshot, STATE, with_for_update=session.get_bind().dialect.name == "postgresql")
    if snap is None:
        session.add(MetricSnapshot(name=STATE, computed_at=now(), data={"ready": False, "folds": 0, **changes}))
    else:
        snap.data = {**snap.data, **changes}
        snap.computed_at = now()
        session.add(snap)
    session.flush()


# ---------------------------------------------------------------- the full count (what the triggers keep up)


def _flag(cond: Any) -> Any:  # noqa: ANN401
    from sqlalchemy import case

    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def full_counter_rows(session: Session) -> list[Row]:
    """Every counter recomputed from the tables (reads every counted row): the state the triggers maintain."""
    from sqlalchemy import case

    from casemgr.ai.models import AICall
    from casemgr.audit.models import AuditEvent
    from casemgr.cases.models import Case, StageHistory
    from casemgr.governance.models import AIDecision
    from casemgr.intake.models import Message, QuarantinedMessage
    from casemgr.metrics.service import _json_true

    rows: list[Row] = []

    def add(metric: str, q: Any, nkeys: int) -> None:
        for r in session.execute(q).all():
            keys = [str(k) for k in r[:nkeys]] + [""] * (3 - nkeys)
            n, a, b, v = (list(r[nkeys:]) + [0, 0, 0])[:4]
            if n:
                rows.append((metric, keys[0], keys[1], keys[2], int(n or 0), int(a or 0), int(b or 0), float(v or 0)))

    add("cases", select(col(Case.case_type), func.count(), _flag(col(Case.ai_status) == "unavailable"),
                        _flag(_json_true(session, col(Case.rules_result), "default_used"))).group_by(col(Case.case_type)), 1)
    add("visits", select(col(StageHistory.case_type), func.count()).group_by(col(StageHistory.case_type)), 1)
    add("decisions", select(col(AIDecision.kind), col(AIDecision.outcome), col(AIDecision.review_status), func.count())
        .group_by(col(AIDecision.kind), col(AIDecision.outcome), col(AIDecision.review_status)), 3)
    bucket = case(*[(col(AICall.latency_ms) <= b, str(i)) for i, b in enumerate(LATENCY_BUCKETS_MS)],
                  else_=str(len(LATENCY_BUCKETS_MS)))
    cap, prov = col(AICall.capability), col(AICall.provider)
    add("calls", select(cap, prov, bucket, func.count(), _flag(col(AICall.error).is_not(None)), literal(0),
                        func.sum(col(AICall.latency_ms))).group_by(cap, prov, bucket), 3)
    add("breaches", select(func.count()).select_from(AuditEvent).where(col(AuditEvent.action) == "sla.breached"), 0)
    add("quarantine", select(col(QuarantinedMessage.status), func.count()).group_by(col(QuarantinedMessage.status)), 1)
    add("outbound", select(col(Message.status), func.count()).where(
        col(Message.direction) == "outbound", col(Message.status).in_(("failed", "outbox"))).group_by(col(Message.status)), 1)
    return rows


def _replace_counters(session: Session, rows: list[Row], max_delta_id: int | None) -> None:
    from sqlalchemy import delete

    if max_delta_id is None:
        session.execute(delete(MetricDelta))
    else:
        session.execute(delete(MetricDelta).where(col(MetricDelta.id) <= max_delta_id))
    session.execute(delete(MetricCounter))
    if rows:
        session.execute(MetricCounter.__table__.insert(),  # type: ignore[attr-defined]
                        [dict(zip((*_DIMS, "n", "a", "b", "v"), r, strict=True)) for r in rows])


def reset_in_session(session: Session) -> None:
    """Count the tables and make that the counters, in the caller's write transaction (tests, small databases)."""
    if session.get_bind().dialect.name == "postgresql":
        # Writers of counted rows wait in their trigger until this commits: each change is counted or leaves a delta.
        session.execute(text("LOCK TABLE metric_deltas IN SHARE ROW EXCLUSIVE MODE"))
    st = state(session)
    _replace_counters(session, full_counter_rows(session), None)
    _put_state(session, {"ready": True, "folds": int(st["folds"]) + 1})


def reset() -> None:
    """The full recount in as short a write as the database allows (see the module docstring)."""
    from casemgr.db import read_session, write_session

    with write_session() as ws:
        dialect = ws.get_bind().dialect.name
        if dialect == "postgresql":
            reset_in_session(ws)
            return
    while True:
        with read_session() as rs:  # one SQLite read snapshot
            folds = int(state(rs)["folds"])
            top = int(rs.execute(select(func.coalesce(func.max(MetricDelta.id), 0))).scalar_one())
            rows = full_counter_rows(rs)
        with write_session() as ws:
            if int(state(ws)["folds"]) != folds:
                continue  # a fold moved deltas meanwhile (perhaps ones after the snapshot): count again
            _replace_counters(ws, rows, top)
            _put_state(ws, {"ready": True, "folds": folds + 1})
            return


# ---------------------------------------------------------------- folding the deltas


def _add_to_counters(session: Session, rows: list[Row]) -> None:
    table = MetricCounter.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    ins = dialect_insert(table)
    stmt = ins.on_conflict_do_update(index_elements=[table.c[c] for c in _DIMS],
                                     set_={c: table.c[c] + ins.excluded[c] for c in ("n", "a", "b", "v")})
    session.execute(stmt, [dict(zip((*_DIMS, "n", "a", "b", "v"), r, strict=True)) for r in sorted(rows)])


def fold_chunk(session: Session, limit: int) -> int:
    """Move up to `limit` of the oldest deltas into the counters in the caller's write transaction; returns how
    many. DELETE … RETURNING: a delta another refresh folded meanwhile is simply not returned (no double count)."""
    ids = select(col(MetricDelta.id)).order_by(col(MetricDelta.id)).limit(limit).scalar_subquery()
    got = session.execute(
        MetricDelta.__table__.delete().where(MetricDelta.__table__.c.id.in_(ids))  # type: ignore[attr-defined]
        .returning(*[MetricDelta.__table__.c[c] for c in (*_DIMS, "n", "a", "b", "v")])  # type: ignore[attr-defined]
    ).all()
    if not got:
        return 0
    agg: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for m, k1, k2, k3, n, a, b, v in got:
        t = agg[(m, k1, k2, k3)]
        t[0] += n
        t[1] += a
        t[2] += b
        t[3] += v
    _add_to_counters(session, [(*k, int(t[0]), int(t[1]), int(t[2]), float(t[3])) for k, t in agg.items()])
    _put_state(session, {"folds": int(state(session)["folds"]) + 1})
    return len(got)


def fold(*, max_s: float | None = None) -> dict[str, int]:
    """Fold every delta into the counters in write transactions of about TXN_BUDGET_S each."""
    from casemgr.db import read_session, write_session

    stats = {"deltas": 0, "transactions": 0}
    with read_session() as rs:
        if not state(rs)["ready"] or rs.execute(select(col(MetricDelta.id)).limit(1)).first() is None:
            return stats
    chunk, started_run = FIRST_CHUNK, time.monotonic()
    while max_s is None or time.monotonic() - started_run < max_s:
        with write_session() as ws:
            started = time.monotonic()
            n = fold_chunk(ws, chunk)
        spent = time.monotonic() - started  # with the commit (casemgr/metrics/rollup.py roll_pending)
        stats["transactions"] += 1
        stats["deltas"] += n
        if n < chunk:
            break
        chunk = max(50, min(MAX_CHUNK, int(chunk * min(TXN_BUDGET_S / max(spent, 1e-4), 2.0))))
    return stats


def current_rows(session: Session) -> list[Row]:
    """Counters plus the deltas not yet folded, summed per metric and key (nonzero groups only)."""
    cols = ("metric", "k1", "k2", "k3", "n", "a", "b", "v")
    both = union_all(select(*[MetricCounter.__table__.c[c] for c in cols]),  # type: ignore[attr-defined]
                     select(*[MetricDelta.__table__.c[c] for c in cols])).subquery()  # type: ignore[attr-defined]
    q = select(both.c.metric, both.c.k1, both.c.k2, both.c.k3, func.sum(both.c.n), func.sum(both.c.a),
               func.sum(both.c.b), func.sum(both.c.v)).group_by(both.c.metric, both.c.k1, both.c.k2, both.c.k3)
    return [(m, k1, k2, k3, int(n or 0), int(a or 0), int(b or 0), float(v or 0))
            for m, k1, k2, k3, n, a, b, v in session.execute(q).all() if int(n or 0) != 0]


# ---------------------------------------------------------------- the live figures


def _open_sql(dialect: str) -> dict[str, str]:
    """The open-backlog statements. Text, because SQLAlchemy renders no INDEXED BY: SQLite's planner, without
    statistics, took ix_cases_status_waiting_due and a temp b-tree over every open case row; naming the partial
    index makes it read only the index (an error, not a silent full read, if the index stops matching)."""
    sqlite = dialect == "sqlite"
    backlog = "cases INDEXED BY ix_cases_open_backlog" if sqlite else "cases"
    entered = "cases INDEXED BY ix_cases_open_entered" if sqlite else "cases"
    epoch = ("(julianday(stage_entered_at) - 2440587.5) * 86400.0" if sqlite
             else "CAST(EXTRACT(epoch FROM stage_entered_at) AS FLOAT)")
    where = f"status = '{OPEN}'"
    waiting = "waiting_on_customer = 0" if sqlite else "waiting_on_customer = false"
    return {
        "backlog": f"SELECT case_type, stage, queue, count(*) FROM {backlog} WHERE {where} "
                   "GROUP BY case_type, stage, queue",
        "ages": f"SELECT case_type, stage, count(*), sum({epoch}) FROM {backlog} WHERE {where} GROUP BY case_type, stage",
        "sla": "SELECT case_type, "
               "sum(CASE WHEN sla_due_at IS NOT NULL OR sla_state IN ('breached', 'at_risk') THEN 1 ELSE 0 END), "
               "sum(CASE WHEN sla_state = 'breached' OR (sla_due_at IS NOT NULL AND sla_due_at < :at) THEN 1 ELSE 0 END), "
               "sum(CASE WHEN sla_state = 'at_risk' THEN 1 ELSE 0 END), "
               "sum(CASE WHEN sla_state = 'paused' THEN 1 ELSE 0 END) "
               f"FROM {backlog} WHERE {where} GROUP BY case_type",
        "longest": "SELECT id, reference, case_type, stage, queue, subject, stage_entered_at, sla_state "
                   f"FROM {entered} WHERE {where} AND {waiting} ORDER BY stage_entered_at, id LIMIT 20",
    }


def open_figures(session: Session, at: datetime) -> dict[str, Any]:
    """Backlog, ages, SLA state and the longest-waiting cases, over open cases only (their partial indexes)."""
    from sqlalchemy import bindparam

    from casemgr.cases.models import Case

    q = _open_sql(session.get_bind().dialect.name)
    when = Case.__table__.c  # type: ignore[attr-defined]
    at_epoch = at.timestamp()
    backlog = [{"case_type": ct, "stage": st, "queue": qu, "n": int(n)}
               for ct, st, qu, n in session.execute(text(q["backlog"])).all()]
    ages = [{"case_type": ct, "stage": st, "n": int(n), "age_s": max(float(n) * at_epoch - float(s or 0), 0.0)}
            for ct, st, n, s in session.execute(text(q["ages"])).all()]
    sla = [{"case_type": ct, "with_sla": int(w or 0), "breached": int(b or 0), "at_risk": int(r or 0),
            "paused": int(p or 0)}
           for ct, w, b, r, p in session.execute(
               text(q["sla"]).bindparams(bindparam("at", at, type_=when.sla_due_at.type))).all()]
    rows = session.execute(text(q["longest"]).columns(when.id, when.reference, when.case_type, when.stage, when.queue,
                                                       when.subject, when.stage_entered_at, when.sla_state)).all()
    longest = [{"id": cid, "reference": ref, "case_type": ct, "stage": st, "queue": qu, "subject": subj,
                "stage_entered_at": ent.isoformat() if ent else None, "sla_state": ss}
               for cid, ref, ct, st, qu, subj, ent, ss in rows]
    return {"backlog": backlog, "open_ages": ages, "sla": sla, "longest_waiting": longest}


def quarantine_last_7d(session: Session, at: datetime) -> int:
    from casemgr.intake.models import QuarantinedMessage

    return int(session.execute(select(func.count()).select_from(QuarantinedMessage)
                               .where(col(QuarantinedMessage.created_at) >= at - timedelta(days=7))).scalar_one())


def tally_decisions(rows: Iterable[tuple[str, str, str, int]]) -> dict[str, dict[str, int]]:
    """AI decision counts per kind from (kind, outcome, review_status, n) rows: the dashboard's shape, shared by
    the counters and the full recompute (service.compute_live) so the two cannot drift apart."""
    ai: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, outcome, review, n in rows:
        d = ai[kind]
        d["total"] += n
        d[f"outcome:{outcome}"] += n
        d[f"review:{review}"] += n
        if outcome == "suggested":
            d[f"suggested_review:{review}"] += n
    return ai


def live_figures(session: Session, at: datetime) -> dict[str, Any]:
    """The same figures as service.compute_live(), from the counters and the open backlog (counters must be ready)."""
    per: dict[str, list[Row]] = defaultdict(list)
    for r in current_rows(session):
        per[r[0]].append(r)
    by_type = {k1: n for _, k1, _, _, n, _, _, _ in sorted(per["cases"])}
    cases_total = sum(by_type.values())
    visits_by_type = {k1: n for _, k1, _, _, n, _, _, _ in per["visits"]}
    ai = tally_decisions((kind, outcome, review, n) for _, kind, outcome, review, n, _, _, _ in sorted(per["decisions"]))
    calls: dict[tuple[str, str], dict[str, Any]] = {}
    for _, cap, prov, bucket, n, errors, _, latency in sorted(per["calls"]):
        c = calls.setdefault((cap, prov), {"capability": cap, "provider": prov, "n": 0, "latency_ms_sum": 0.0,
                                           "errors": 0, "le": [0] * len(LATENCY_BUCKETS_MS)})
        c["n"] += n
        c["latency_ms_sum"] += latency
        c["errors"] += errors
        for j in range(int(bucket), len(LATENCY_BUCKETS_MS)):
            c["le"][j] += n
    quarantine = {k1: n for _, k1, _, _, n, _, _, _ in per["quarantine"]}
    outbound = {k1: n for _, k1, _, _, n, _, _, _ in per["outbound"]}
    transitions = sum(visits_by_type.values()) - cases_total
    return {
        "at": at.isoformat(), **open_figures(session, at),
        "exceptions": {"quarantine_total": sum(quarantine.values()), "quarantine_held": quarantine.get("held", 0),
                       "quarantine_last_7d": quarantine_last_7d(session, at),
                       "ai_unavailable": sum(r[5] for r in per["cases"]),
                       "rules_fallbacks": sum(r[6] for r in per["cases"]),
                       "outbound_failed": outbound.get("failed", 0), "outbound_in_outbox": outbound.get("outbox", 0)},
        "ai_decisions": {k: dict(v) for k, v in ai.items()}, "ai_calls": list(calls.values()),
        "totals": {"cases": cases_total, "transitions": max(transitions, 0),
                   "sla_breach_events": sum(r[4] for r in per["breaches"])},
        "cases_by_type": by_type,
        "transitions_by_type": {ct: max(visits_by_type.get(ct, 0) - n, 0) for ct, n in by_type.items()},
    }
