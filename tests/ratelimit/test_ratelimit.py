"""Rate limits counted in the database: they hold across app processes, slide across window edges, and threads
racing on one key never admit more than the limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from casemgr.db import read_session, write_session
from casemgr.ratelimit import service as ratelimit
from casemgr.ratelimit.models import RateCounter

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)  # on a minute boundary


def test_limit_per_key_within_a_window() -> None:
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        assert [ratelimit.allow("form:10.0.0.1", 3) for _ in range(4)] == [True, True, True, False]
        assert ratelimit.allow("form:10.0.0.2", 3)  # another address has its own count


def test_a_burst_across_the_window_edge_is_still_limited() -> None:
    with time_machine.travel(T0 + timedelta(seconds=55), tick=False):
        assert all(ratelimit.allow("form:a", 3) for _ in range(3))
    # 10 s later, 5 s into the next window, the previous one still weighs 55/60 of its 3 hits: no fresh 3.
    with time_machine.travel(T0 + timedelta(seconds=65), tick=False):
        assert not ratelimit.allow("form:a", 3)
    # A full window later the old hits have slid out.
    with time_machine.travel(T0 + timedelta(seconds=125), tick=False):
        assert ratelimit.allow("form:a", 3)


def test_events_counted_apart_from_the_decision() -> None:
    with time_machine.travel(T0, tick=False), write_session() as s:
        for _ in range(2):
            ratelimit.hit("login-fail:x", 600, session=s)
        assert not ratelimit.exceeded("login-fail:x", 3, 600, session=s)
        ratelimit.hit("login-fail:x", 600, session=s)
        assert ratelimit.exceeded("login-fail:x", 3, 600, session=s)
        assert not ratelimit.exceeded("login-fail:y", 3, 600, session=s)


def test_concurrent_attempts_never_exceed_the_limit() -> None:
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False), ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ratelimit.allow("form:burst", 10), range(40)))
    assert sum(results) == 10
    with read_session() as s:
        assert s.execute(select(func.sum(RateCounter.count)).where(RateCounter.key == "form:burst")).scalar() == 40


def test_old_counters_are_pruned(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False):
        ratelimit.allow("form:old", 5)
    monkeypatch.setattr(ratelimit, "_PRUNE_CHANCE", 1.0)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        ratelimit.allow("form:new", 5)
    with read_session() as s:
        keys = s.execute(select(RateCounter.key)).scalars().all()
    assert keys == ["form:new"]
    assert ratelimit.clear("form:") == 1


def test_allow_many_decides_like_allow_called_once_per_key() -> None:
    """The batch form (one upsert for a mail batch's acknowledgements) counts and decides as single calls do,
    a key listed twice included; the limit is 3 and the previous window's hits still weigh."""
    keys = ["a", "b", "a", "a", "c", "a", "b", "b"]
    with time_machine.travel(T0 + timedelta(seconds=50), tick=False):
        assert ratelimit.allow("ack:b", 3, 60) and ratelimit.allow("one:b", 3, 60)
    with time_machine.travel(T0 + timedelta(seconds=70), tick=False):
        one_by_one = [ratelimit.allow(f"one:{k}", 3, 60) for k in keys]
        with write_session() as s:
            batched = ratelimit.allow_many([f"ack:{k}" for k in keys], 3, 60, session=s)
        with write_session() as s:
            again = ratelimit.allow_many(["ack:c", "ack:a"], 3, 60, session=s)
    # b: the previous window's hit weighs 50/60 ten seconds into the new one, so its third hit is over 3.
    assert batched == one_by_one == [True, True, True, True, True, False, True, False]
    assert again == [True, False]
    with read_session() as s:
        counts = dict(s.execute(select(RateCounter.key, func.sum(RateCounter.count)).group_by(RateCounter.key)).all())
    assert counts["ack:a"] == counts["one:a"] + 1 == 5 and counts["ack:c"] == 2 and counts["ack:b"] == 1 + 3


def test_allow_many_with_no_allowance_counts_nothing() -> None:
    with write_session() as s:
        assert ratelimit.allow_many(["ack:z", "ack:z"], 0, 60, session=s) == [False, False]
        assert ratelimit.allow_many([], 3, 60, session=s) == []
