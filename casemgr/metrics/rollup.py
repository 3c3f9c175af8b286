"""Incremental stage-visit rollups (issue 23): metric_stage_daily follows the visits finished since the last run.

A finished stage visit (stage_history.left_at set) is counted once per rollup *epoch*: `rolled_epoch` records the
epoch it was added in, and the partial index ix_stage_history_rollup (rolled_epoch, id) WHERE left_at IS NOT NULL
finds the visits still pending (rolled_epoch < epoch) without reading the others. A refresh therefore costs what
changed since the last one, not what the table holds, and a visit written with a back-dated time (imports, the
demo) is counted like any other.

Each chunk is claimed and added in one short write transaction: `UPDATE … SET rolled_epoch = e WHERE id IN (…) AND
rolled_epoch < e RETURNING id`, then the claimed visits' counts are added to the rollup rows with an upsert. A visit
is in the rollups if and only if its rolled_epoch is the current epoch, so concurrent refreshes (two workers) never
count a visit twice, and a refresh killed between chunks loses nothing. The visits' values are read before the
write lock (a finished visit never changes); the chunk size follows a time budget, not a row count.

A full rebuild (`casemgr metrics refresh --full`, an explicit admin command: after a change of SLA targets, the
calendar or the bucket scheme, or to repair) recounts the visits already counted and swaps the result in. It sets
"rebuilding" in the state row, which stops chunks from claiming meanwhile, so the counted set (rolled_epoch = epoch)
is frozen: it is tallied afresh in short read transactions, without the write lock, compared with the rollup rows
a few days per short read, and only the rows that differ are written, in short write transactions. No visit row is
written, and a rebuild with nothing to repair writes only its end. (It used to bump the epoch, which made
every visit pending again: at 1M cases that rewrote rolled_epoch and the partial index of 4.5M stage_history rows,
~2,000 WAL pages per 20 ms chunk for minutes, and lifted the queue page's p95 past 50 ms in the soak.) A rebuild
token in the state row makes a rebuild started meanwhile win over one that read the counted set before it.
`full_rows()` recomputes the rollups from scratch (tests).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from casemgr.casetypes.registry import get_registry
from casemgr.db import epoch_seconds
from casemgr.jobs.pacing import rest_after
from casemgr.metrics.models import MetricSnapshot, MetricStageDaily
from casemgr.sla.calendar import get_calendar

STATE = "rollup_state"
# Wall time a chunk's write transaction aims at: the bound is 50 ms; the commit's fsync comes on top.
TXN_BUDGET_S = 0.02
FIRST_CHUNK = 200
MAX_CHUNK = 5000  # ids in one IN (…): well under SQLite's bound-parameter limit
# A rebuild's read transactions aim at this: a long SQLite read keeps the checkpointer from resetting the WAL.
READ_BUDGET_S = 0.1
FIRST_READ = 5000
MAX_READ = 200_000
RATIO = 1.05
_LOG_R = math.log(RATIO)
_EPOCH0 = date(1970, 1, 1)
Visit = tuple[int, str, str, float, float]  # id, case type, stage, entered and left (seconds since 1970)
Key = tuple[int, str, str, int]  # day number, case type, stage, bucket


def bucket_of(seconds: float) -> int:
    """Bucket b >= 1 holds durations in [1.05^(b-1), 1.05^b) seconds; bucket 0 holds under a second."""
    if seconds < 1:
        return 0
    return int(math.log(seconds) / _LOG_R) + 1


# ---------------------------------------------------------------- aggregation (shared by both paths)


class Tally:
    """Counts of finished visits per (exit day, case type, stage, duration bucket), as the rollup rows hold them."""

    def __init__(self) -> None:
        reg = get_registry()
        self.finals = {(ct.name, sd.name) for ct in reg.case_types.values() for sd in ct.stages if sd.final}
        self.targets: dict[tuple[str, str], tuple[float, bool]] = {}
        for ct in reg.case_types.values():
            for sd in ct.stages:
                if sd.sla and not sd.waits_on_customer and not sd.final:
                    self.targets[(ct.name, sd.name)] = (sd.sla.hours * 3600.0, sd.sla.business_hours)
        self.cal = get_calendar()
        self.agg: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
        self.visits = 0

    def add(self, ct: str, stage: str, entered: float | None, left: float | None) -> None:
        if (ct, stage) in self.finals or entered is None or left is None:
            return
        entered, left = float(entered), float(left)
        dur = max(left - entered, 0.0)
        row = self.agg[(int(left // 86400), ct, stage, bucket_of(dur))]
        row[0] += 1
        row[1] += dur
        target = self.targets.get((ct, stage))
        if target is not None:
            row[2] += 1
            seconds, business = target
            # Business time never exceeds wall time: most visits are settled without the calendar.
            if dur > seconds and (not business or self.cal.add(datetime.fromtimestamp(entered, UTC),
                                                                 seconds).timestamp() < left):
                row[3] += 1
        self.visits += 1

    def rows(self) -> list[dict[str, Any]]:
        return [{"day": _EPOCH0 + timedelta(days=d), "case_type": ct, "stage": st, "bucket": b, "n": int(v[0]),
                 "seconds": v[1], "with_sla": int(v[2]), "breached": int(v[3])}
                for (d, ct, st, b), v in sorted(self.agg.items())]


def full_rows(session: Session) -> tuple[list[dict[str, Any]], int]:
    """The rollups recomputed from every finished visit (reads only): what the incremental rollups must equal."""
    from casemgr.cases.models import StageHistory

    tally = Tally()
    q = select(col(StageHistory.case_type), col(StageHistory.stage), epoch_seconds(session, StageHistory.entered_at),
               epoch_seconds(session, StageHistory.left_at)).where(col(StageHistory.left_at).is_not(None))
    for ct, stage, entered, left in session.execute(q).yield_per(50_000):
        tally.add(ct, stage, entered, left)
    return tally.rows(), tally.visits


# ---------------------------------------------------------------- state: epoch and rebuild flag


def state(session: Session, *, lock: bool = False) -> dict[str, Any]:
    """The rollup state ({"epoch": e, "rebuilding": bool, ...}); `lock` holds its row against a concurrent rebuild
    (PostgreSQL FOR SHARE; SQLite's write transaction already excludes every other writer)."""
    q = select(MetricSnapshot).where(col(MetricSnapshot.name) == STATE)
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(read=True)
    snap = session.execute(q).scalars().first()
    data = dict(snap.data) if snap is not None else {}
    data.setdefault("epoch", 1)
    data.setdefault("rebuilding", False)
    return data


def put_state(session: Session, changes: dict[str, Any], at: datetime | None = None) -> None:
    from casemgr.clock import now

    snap = session.get(MetricSnapshot, STATE, with_for_update=session.get_bind().dialect.name == "postgresql")
    at = at or now()
    if snap is None:
        session.add(MetricSnapshot(name=STATE, computed_at=at, data={"epoch": 1, "rebuilding": False, **changes}))
    else:
        snap.data = {**snap.data, **changes}
        snap.computed_at = at
        session.add(snap)
    session.flush()


# ---------------------------------------------------------------- claiming and adding a chunk


def pending(session: Session, epoch: int, limit: int | None = None) -> list[Visit]:
    """Finished visits not counted in `epoch`, through the partial index (any order)."""
    return [(int(i), ct, st, e, lf) for i, ct, st, e, lf in session.execute(pending_query(session, epoch, limit)).all()]


def _visit_columns(session: Session) -> list[Any]:
    """A Visit's columns: id, case type, stage, entered and left in seconds since 1970."""
    from casemgr.cases.models import StageHistory

    return [col(StageHistory.id), col(StageHistory.case_type), col(StageHistory.stage),
            epoch_seconds(session, StageHistory.entered_at), epoch_seconds(session, StageHistory.left_at)]


def pending_query(session: Session, epoch: int, limit: int | None = None) -> Any:
    from casemgr.cases.models import StageHistory

    q = select(*_visit_columns(session)) \
        .where(col(StageHistory.left_at).is_not(None), col(StageHistory.rolled_epoch) < epoch)
    return q if limit is None else q.limit(limit)


def counted_query(session: Session, epoch: int, after: int = 0, limit: int | None = None) -> Any:
    """Finished visits counted in `epoch`, in id order from `after` on, through the same partial index."""
    from casemgr.cases.models import StageHistory

    q = select(*_visit_columns(session)) \
        .where(col(StageHistory.left_at).is_not(None), col(StageHistory.rolled_epoch) == epoch,
               col(StageHistory.id) > after).order_by(col(StageHistory.id))
    return q if limit is None else q.limit(limit)


_VALUES = ("n", "seconds", "with_sla", "breached")


def _key(row: Any) -> tuple[Any, ...]:
    return (row["day"], row["case_type"], row["stage"], row["bucket"])


def _upsert(session: Session, rows: list[dict[str, Any]], *, replace: bool = False) -> None:
    """Insert rollup rows; an existing row gets the new counts added (chunks), or replaced (`replace`: a rebuild)."""
    if not rows:
        return
    table = MetricStageDaily.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    ins = dialect_insert(table)
    stmt = ins.on_conflict_do_update(
        index_elements=[table.c.day, table.c.case_type, table.c.stage, table.c.bucket],
        set_={c: ins.excluded[c] if replace else table.c[c] + ins.excluded[c] for c in _VALUES})
    # Sorted by key: concurrent refreshes take row locks in one order.
    session.execute(stmt, sorted(rows, key=_key))


def add_chunk(session: Session, epoch: int, visits: Iterable[Visit]) -> int | None:
    """In the caller's write transaction: claim the visits still pending in `epoch` and add them to the rollups.
    Returns how many were claimed, or None when the epoch moved on or a rebuild is emptying the rollups."""
    from casemgr.cases.models import StageHistory

    st = state(session, lock=True)
    if st["epoch"] != epoch or st["rebuilding"]:
        return None
    by_id = {v[0]: v for v in visits}
    if not by_id:
        return 0
    claimed = session.execute(
        update(StageHistory).where(col(StageHistory.id).in_(list(by_id)), col(StageHistory.rolled_epoch) < epoch,
                                   col(StageHistory.left_at).is_not(None))
        .values(rolled_epoch=epoch).returning(col(StageHistory.id))
        .execution_options(synchronize_session=False)
    ).scalars().all()
    tally = Tally()
    for i in claimed:
        _, ct, stage, entered, left = by_id[int(i)]
        tally.add(ct, stage, entered, left)
    _upsert(session, tally.rows())
    return len(claimed)


def roll_in_session(session: Session) -> int:
    """Every pending visit, in the caller's transaction (tests and small databases). Returns visits claimed."""
    st = state(session)
    if st["rebuilding"]:
        tally = Tally()
        for _, ct, stage, entered, left in session.execute(counted_query(session, st["epoch"])).all():
            tally.add(ct, stage, entered, left)
        session.execute(delete(MetricStageDaily))
        _upsert(session, tally.rows())
        put_state(session, {"rebuilding": False})
    return add_chunk(session, st["epoch"], pending(session, st["epoch"])) or 0


def start_rebuild_in_session(session: Session) -> int:
    """Bump the epoch and empty the rollups in the caller's transaction (small databases); returns the epoch."""
    epoch = int(state(session)["epoch"]) + 1
    session.execute(delete(MetricStageDaily))
    put_state(session, {"epoch": epoch, "rebuilding": False})
    return epoch


# ---------------------------------------------------------------- the same in short write transactions


def start_rebuild() -> int:
    """An explicit full rebuild: claims stop, and roll_pending() recounts the counted visits and swaps the rollups.
    Returns the rebuild token."""
    from casemgr.db import write_session

    with write_session() as ws:
        token = int(state(ws, lock=True).get("rebuild", 0)) + 1
        put_state(ws, {"rebuilding": True, "rebuild": token})
    return token


def _recount(epoch: int, stats: dict[str, Any]) -> Tally:
    """Tally every visit counted in `epoch` in read transactions of about READ_BUDGET_S, resting between them."""
    from casemgr.db import read_session

    tally, after, size = Tally(), 0, FIRST_READ
    while True:
        began = time.monotonic()
        with read_session() as rs:
            rows = rs.execute(counted_query(rs, epoch, after, size)).all()
        for _, ct, stage, entered, left in rows:
            tally.add(ct, stage, entered, left)
        spent = time.monotonic() - began
        stats["reads"] += 1
        if len(rows) < size:
            return tally
        after = int(rows[-1][0])
        stats["rested_s"] += rest_after(spent)
        size = max(1000, min(MAX_READ, int(size * min(READ_BUDGET_S / max(spent, 1e-4), 2.0))))


_IN_BATCH = 500  # rows per write of a rebuild: ~10 ms at 1M cases, and 2,000 bound parameters in an IN (…)


def _same(old: Any, new: dict[str, Any]) -> bool:
    # The seconds are float sums, added in another order by the chunks than by the recount.
    return all(old[c] == new[c] for c in ("n", "with_sla", "breached")) and \
        math.isclose(old["seconds"], new["seconds"], rel_tol=1e-9, abs_tol=1e-6)


def _rebuild(stats: dict[str, Any]) -> None:
    """Recount the counted visits (no write lock), then compare the rollup rows with the recount a few days per
    short read and write only the rows that differ; the last write ends the rebuild. At 1M cases the rollups hold
    ~460,000 rows: rewriting them all cost minutes of short writes, while a repair usually changes few (none when
    nothing drifted). Gives up when the rebuild ended or restarted meanwhile (the token)."""
    from sqlalchemy import tuple_

    from casemgr.db import read_session, write_session

    with read_session() as rs:
        st = state(rs)
        if not st["rebuilding"]:
            return
        old_days = set(rs.execute(select(col(MetricStageDaily.day)).distinct()).scalars().all())
    epoch, token = int(st["epoch"]), int(st.get("rebuild", 0))

    def still_ours(ws: Session) -> bool:
        now_st = state(ws, lock=True)
        return bool(now_st["rebuilding"]) and int(now_st.get("rebuild", 0)) == token and int(now_st["epoch"]) == epoch

    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in _recount(epoch, stats).rows():
        by_day[row["day"]].append(row)
    # While rebuilding no chunk adds rows, so the days read above are every day the rollups hold.
    days = sorted(old_days | set(by_day))
    i, per = 0, 8
    while i < len(days):
        part = days[i:i + per]
        began = time.monotonic()
        with read_session() as rs:
            cols = [col(getattr(MetricStageDaily, c)) for c in ("day", "case_type", "stage", "bucket", *_VALUES)]
            old = {_key(r): r for r in rs.execute(select(*cols).where(col(MetricStageDaily.day) >= part[0],
                                                                      col(MetricStageDaily.day) <= part[-1]))
                   .mappings().all()}
        new = {_key(r): r for d in part for r in by_day.get(d, [])}
        stale = [k for k in old if k not in new]
        changed = [r for k, r in new.items() if k not in old or not _same(old[k], r)]
        spent = time.monotonic() - began
        for n in range(0, max(len(stale), len(changed)), _IN_BATCH):
            with write_session() as ws:
                started = time.monotonic()
                if not still_ours(ws):
                    return
                gone = stale[n:n + _IN_BATCH]
                if gone:
                    key_cols = tuple_(*(col(getattr(MetricStageDaily, c)) for c in ("day", "case_type", "stage", "bucket")))
                    ws.execute(delete(MetricStageDaily).where(key_cols.in_(gone)))
                _upsert(ws, changed[n:n + _IN_BATCH], replace=True)
            spent += time.monotonic() - started  # with the commit (see roll_pending)
            stats["transactions"] += 1
            stats["rows_rewritten"] = stats.get("rows_rewritten", 0) + len(gone) + len(changed[n:n + _IN_BATCH])
        stats["rested_s"] += rest_after(spent)
        i += per
        per = max(1, min(366, int(per * min(READ_BUDGET_S / max(spent, 1e-4), 2.0))))
    with write_session() as ws:
        if still_ours(ws):
            put_state(ws, {"rebuilding": False})
    stats["transactions"] += 1


def roll_pending(*, max_chunks: int | None = None, max_s: float | None = None,
                 duty: float | None = None) -> dict[str, Any]:
    """Add every pending visit to the rollups in write transactions of about TXN_BUDGET_S each: the pending ids
    and their values are read in a read session, then claimed and added under the write lock. Stops after
    `max_chunks` chunks or `max_s` seconds (at least one chunk runs); `duty` overrides CASEMGR_BACKGROUND_DUTY for
    the chunks (a bench settling a fresh import before its traffic runs them back to back). Returns {"visits",
    "transactions", "chunk" (the last chunk size), "more" (stopped by a limit, visits may be left), "rested_s"
    (paced: casemgr/jobs/pacing.py), "reads" (a rebuild's recount)}."""
    from casemgr.db import read_session, write_session

    stats: dict[str, Any] = {"visits": 0, "transactions": 0, "chunk": FIRST_CHUNK, "more": False, "rested_s": 0.0,
                             "reads": 0}
    started_run = time.monotonic()
    with read_session() as rs:
        st = state(rs)
    if st["rebuilding"]:
        _rebuild(stats)
    chunk, n = FIRST_CHUNK, 0
    while True:
        if (max_chunks is not None and n >= max_chunks) or (max_s is not None and n
                                                            and time.monotonic() - started_run > max_s):
            stats["more"] = True
            break
        n += 1
        began = time.monotonic()
        with read_session() as rs:
            epoch = int(state(rs)["epoch"])
            visits = pending(rs, epoch, chunk)
        if not visits:
            break
        with write_session() as ws:
            started = time.monotonic()
            claimed = add_chunk(ws, epoch, visits)
        # The commit counts: at 1M cases it wrote a chunk's pages to the WAL for as long as the statements ran, and
        # chunks sized on the statements alone grew to 70-110 ms write transactions (20 ms budget).
        spent = time.monotonic() - started
        stats["transactions"] += 1
        if len(visits) >= chunk:  # a full chunk: more may be pending, so rest before the next (casemgr/jobs/pacing.py)
            stats["rested_s"] += rest_after(time.monotonic() - began, duty)
        if claimed is None:  # a rebuild started meanwhile: recount and swap, then claim again
            with read_session() as rs:
                if state(rs)["rebuilding"]:
                    _rebuild(stats)
            continue
        stats["visits"] += claimed
        # Size the next chunk by the time this one took (a loaded host gets smaller chunks), within bounds.
        chunk = max(20, min(MAX_CHUNK, int(len(visits) * min(TXN_BUDGET_S / max(spent, 1e-4), 2.0))))
        stats["chunk"] = chunk
    return stats
