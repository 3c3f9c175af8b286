"""Incremental stage-visit rollups (issue 23): after any sequence of changes and refreshes (in chunks, in one
transaction, concurrent, with a rebuild in between), metric_stage_daily equals a recompute from every visit."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from casemgr.cases import service as cases
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseCreate
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.metrics import rollup, service
from casemgr.metrics.models import MetricStageDaily


def _stored() -> dict[tuple[Any, ...], tuple[int, float, int, int]]:
    with read_session() as s:
        rows = s.execute(select(MetricStageDaily)).scalars().all()
    return {(r.day, r.case_type, r.stage, r.bucket): (r.n, r.seconds, r.with_sla, r.breached) for r in rows if r.n}


def _expected() -> dict[tuple[Any, ...], tuple[int, float, int, int]]:
    with read_session() as s:
        rows, _ = rollup.full_rows(s)
    return {(r["day"], r["case_type"], r["stage"], r["bucket"]): (r["n"], r["seconds"], r["with_sla"], r["breached"])
            for r in rows}


def _assert_equal_to_full_recompute() -> None:
    got, want = _stored(), _expected()
    assert set(got) == set(want)
    for key, (n, seconds, with_sla, breached) in want.items():
        g = got[key]
        assert (g[0], g[2], g[3]) == (n, with_sla, breached), key
        assert g[1] == pytest.approx(seconds, rel=1e-9, abs=1e-6), key  # summed in another order
    with read_session() as s:
        assert rollup.pending(s, rollup.state(s)["epoch"]) == []


def _make_cases(rng: random.Random, n: int) -> list[int]:
    ids = []
    with write_session() as s:
        for i in range(n):
            created = now() - timedelta(days=rng.uniform(0, 40), seconds=rng.uniform(0, 86400))
            case = cases.create_case(s, CaseCreate(case_type=rng.choice(("complaint", "contract")),
                                                   subject=f"rollup case {i}"), "user:test", created_at=created)
            ids.append(int(case.id or 0))
    return ids


def _random_move(rng: random.Random, ids: list[int]) -> bool:
    """One transition of a random case at a random later time; False when the case cannot move (final stage,
    resolution code or handoff required)."""
    with write_session() as s:
        case = s.get(Case, rng.choice(ids))
        assert case is not None
        options = cases.allowed_transitions(case)
        if not options:
            return False
        at = case.stage_entered_at + timedelta(seconds=rng.choice((0.4, 30, 3600, rng.lognormvariate(10, 1.5))))
        try:
            cases.transition(s, case.id or 0, rng.choice(options), case.version, "user:test", at=at)
        except DomainError:
            return False
    return True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rollups_equal_a_full_recompute_after_random_changes(seed: int, monkeypatch) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(rollup, "FIRST_CHUNK", 3)  # many small chunks
    monkeypatch.setattr(rollup, "MAX_CHUNK", 4)
    ids = _make_cases(rng, 14)
    moves = 0
    for _ in range(70):
        moves += _random_move(rng, ids)
        if rng.random() < 0.2:
            how = rng.choice(("chunks", "some chunks", "in session", "rebuild", "rebuild in session"))
            if how == "chunks":
                rollup.roll_pending()
            elif how == "some chunks":
                rollup.roll_pending(max_chunks=rng.randint(1, 3))  # an interrupted refresh
            elif how == "in session":
                with write_session() as s:
                    service.refresh_rollups(s)
            elif how == "rebuild":
                rollup.start_rebuild()
                if rng.random() < 0.5:
                    continue  # killed right after the epoch moved: the next refresh empties and recounts
                rollup.roll_pending()
            else:
                with write_session() as s:
                    service.refresh_rollups(s, full=True)
    assert moves > 20
    rollup.roll_pending()
    _assert_equal_to_full_recompute()


def test_refresh_in_steps_counts_only_the_new_visits_and_a_full_rebuild_counts_them_again() -> None:
    rng = random.Random(7)
    ids = _make_cases(rng, 8)
    while not _random_move(rng, ids):
        pass
    service.refresh_in_steps()
    _assert_equal_to_full_recompute()
    with read_session() as s:
        before = rollup.state(s)
    # One more finished visit: the next refresh claims exactly that one, in one transaction.
    while not _random_move(rng, ids):
        pass
    stats = rollup.roll_pending()
    assert (stats["visits"], stats["transactions"]) == (1, 1)
    assert rollup.roll_pending()["visits"] == 0
    service.refresh_in_steps(full=True)
    with read_session() as s:
        after = rollup.state(s)
        finished = s.execute(text("SELECT count(*) FROM stage_history WHERE left_at IS NOT NULL")).scalar_one()
        in_epoch = s.execute(text("SELECT count(*) FROM stage_history WHERE left_at IS NOT NULL AND rolled_epoch = :e"),
                             {"e": after["epoch"]}).scalar_one()
    # The rebuild recounted the counted visits without writing them: same epoch, every visit still counted in it.
    assert after["epoch"] == before["epoch"] and not after["rebuilding"]
    assert in_epoch == finished
    _assert_equal_to_full_recompute()


def test_concurrent_refreshes_count_each_visit_once(monkeypatch) -> None:
    rng = random.Random(11)
    monkeypatch.setattr(rollup, "FIRST_CHUNK", 2)
    monkeypatch.setattr(rollup, "MAX_CHUNK", 3)
    ids = _make_cases(rng, 12)
    for _ in range(40):
        _random_move(rng, ids)
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            rollup.roll_pending()
        except BaseException as exc:  # an assertion or error inside a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    _assert_equal_to_full_recompute()


@pytest.mark.sqlite_only
def test_pending_visits_are_read_through_the_partial_index() -> None:
    with read_session() as s:
        q = rollup.pending_query(s, rollup.state(s)["epoch"], 100)
        sql = str(q.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(r[-1]) for r in s.execute(text("EXPLAIN QUERY PLAN " + sql)).all())
    assert "ix_stage_history_rollup" in plan, plan


def test_a_refresh_job_hands_a_long_catch_up_over_to_continuation_jobs(monkeypatch, run_jobs) -> None:
    from casemgr.jobs.models import Job
    from casemgr.jobs.service import enqueue
    from casemgr.metrics import jobs as metric_jobs

    rng = random.Random(5)
    monkeypatch.setattr(rollup, "FIRST_CHUNK", 2)
    monkeypatch.setattr(rollup, "MAX_CHUNK", 2)
    monkeypatch.setattr(metric_jobs, "RUN_BUDGET_S", 0.0)  # one chunk per run
    ids = _make_cases(rng, 6)
    for _ in range(20):
        _random_move(rng, ids)
    with write_session() as s:
        enqueue(s, "metrics.refresh", {"full": True})
    run_jobs()
    with read_session() as s:
        runs = s.execute(select(Job).where(Job.kind == "metrics.refresh")).scalars().all()
    assert len(runs) > 2 and {j.status for j in runs} == {"done"}
    _assert_equal_to_full_recompute()
    with read_session() as s:
        assert s.get(service.MetricSnapshot, service.LIVE) is not None  # the last run refreshed the live figures


def test_refresh_in_steps_builds_the_views_from_its_own_live_snapshot(monkeypatch) -> None:
    """The views read the live snapshot: it must be the one this run computed, stored before them. Stored after
    them, the views showed the previous run's open backlog, and the first run (no snapshot yet) ran a full
    in-session refresh under the write lock for every view (9.3 s write transactions in the 1M soak)."""
    from casemgr.audit.service import canonical
    from casemgr.metrics.models import MetricSnapshot

    rng = random.Random(5)
    _make_cases(rng, 6)
    full_refreshes: list[int] = []
    real_refresh = service.refresh

    def counting_refresh(*args: Any, **kwargs: Any) -> Any:
        full_refreshes.append(1)
        return real_refresh(*args, **kwargs)

    monkeypatch.setattr(service, "refresh", counting_refresh)
    first = now()
    service.refresh_in_steps(at=first)
    assert full_refreshes == []
    _make_cases(rng, 3)
    later = first + timedelta(hours=5)  # open ages (time lost per stage) grow by five hours per open case
    service.refresh_in_steps(at=later)
    assert full_refreshes == []
    with read_session() as s:
        stored = s.get(MetricSnapshot, service._view_key(30, None))
        assert stored is not None
        fresh = canonical(service.dashboard(s, days=30, at=later, cached=False))
    assert stored.data == fresh


@pytest.mark.parametrize("duty", [0.5, 1.0])
def test_a_backlog_rests_between_full_chunks_unless_the_duty_is_one(duty: float, monkeypatch) -> None:
    from casemgr.config import get_settings

    rng = random.Random(5)
    monkeypatch.setattr(get_settings(), "background_duty", duty)
    monkeypatch.setattr(rollup, "FIRST_CHUNK", 2)  # the backlog below takes more than one chunk
    ids = _make_cases(rng, 10)
    moves = sum(_random_move(rng, ids) for _ in range(30))
    assert moves > 6
    stats = rollup.roll_pending()
    assert stats["transactions"] >= 2
    # Paced: a rest after each full chunk; at duty 1 the chunks run back to back. Either way every visit counts.
    assert (stats["rested_s"] > 0) is (duty < 1.0)
    _assert_equal_to_full_recompute()


@pytest.mark.parametrize("per_read", [3, 100_000])
def test_a_full_rebuild_repairs_the_rollups_without_writing_a_visit(per_read: int, monkeypatch) -> None:
    """A rebuild recounts what is counted (after a change of SLA targets, or to repair drift) and swaps the rows
    in, day range by day range: no stage_history row is written (at 1M cases rewriting them all held the writer
    for minutes), rows of days no visit has any more go, and visits finished meanwhile are counted after it."""
    rng = random.Random(13)
    monkeypatch.setattr(rollup, "FIRST_READ", per_read)  # many small reads, or one
    monkeypatch.setattr(rollup, "READ_BUDGET_S", 1e-6)  # one day per comparison
    ids = _make_cases(rng, 10)
    for _ in range(40):
        _random_move(rng, ids)
    rollup.roll_pending()
    _assert_equal_to_full_recompute()
    with write_session() as s:  # drift: a wrong count, a row for a day without visits, a lost row
        s.execute(text("UPDATE metric_stage_daily SET n = n + 5, breached = breached + 1 "
                       "WHERE day = (SELECT min(day) FROM metric_stage_daily)"))
        s.execute(text("DELETE FROM metric_stage_daily WHERE day = (SELECT max(day) FROM metric_stage_daily)"))
        s.add(MetricStageDaily(day=(now() - timedelta(days=900)).date(), case_type="complaint", stage="triage",
                               bucket=3, n=7, seconds=70.0, with_sla=7, breached=2))
    got, want = _stored(), _expected()
    drift = len(set(got) ^ set(want)) + sum(got[k] != want[k] for k in set(got) & set(want))
    assert drift >= 3
    with read_session() as s:
        rows_before = s.execute(text("SELECT id, rolled_epoch FROM stage_history ORDER BY id")).all()
        epoch = rollup.state(s)["epoch"]
    rollup.start_rebuild()
    while not _random_move(rng, ids):  # finished while rebuilding: not claimed until the swap ends
        pass
    stats = rollup.roll_pending()
    assert stats["reads"] >= (2 if per_read == 3 else 1) and stats["transactions"] >= 3
    assert stats["rows_rewritten"] == drift  # only the rows that differ are written
    assert stats["visits"] >= 1  # the new visit, claimed after the rebuild
    _assert_equal_to_full_recompute()
    rollup.start_rebuild()  # nothing drifted: the rebuild reads and writes no rollup row
    again = rollup.roll_pending()
    assert again.get("rows_rewritten", 0) == 0 and again["transactions"] == 1
    _assert_equal_to_full_recompute()
    with read_session() as s:
        after = rollup.state(s)
        rows_after = dict(s.execute(text("SELECT id, rolled_epoch FROM stage_history")).all())
    assert after["epoch"] == epoch and not after["rebuilding"]
    assert all(rows_after[i] == e for i, e in rows_before if e)  # no counted visit row rewritten


def test_a_rebuild_restarted_meanwhile_wins_over_the_stale_one(monkeypatch) -> None:
    """A rebuild that read the counted set before another rebuild started must not swap its stale tally in."""
    rng = random.Random(17)
    ids = _make_cases(rng, 6)
    for _ in range(20):
        _random_move(rng, ids)
    rollup.roll_pending()
    rollup.start_rebuild()
    real_recount = rollup._recount
    restarted: list[int] = []

    def recount_then_restart(epoch: int, stats: dict[str, Any]) -> Any:
        tally = real_recount(epoch, stats)
        if not restarted:  # meanwhile: the rebuild ends elsewhere, visits are claimed, a new rebuild starts
            with write_session() as s:
                rollup.put_state(s, {"rebuilding": False})
            while not _random_move(rng, ids):
                pass
            rollup.roll_pending()
            restarted.append(rollup.start_rebuild())
        return tally

    monkeypatch.setattr(rollup, "_recount", recount_then_restart)
    rollup.roll_pending()
    assert restarted
    _assert_equal_to_full_recompute()
