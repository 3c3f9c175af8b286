"""casemgr/jobs/pacing.py: a background catch-up rests in proportion to the work it did (issue 23)."""

from __future__ import annotations

import pytest

from casemgr.jobs import pacing


@pytest.mark.parametrize(("spent", "duty", "rest"), [
    (0.02, 0.5, 0.02),   # half the time working, half resting
    (0.01, 0.25, 0.03),  # a quarter working
    (0.02, 1.0, 0.0),    # duty 1: no rest
    (0.0, 0.5, 0.0),     # nothing done, nothing to rest for
])
def test_rest_is_proportional_to_the_work(spent: float, duty: float, rest: float) -> None:
    assert pacing.rest_after(spent, duty) == pytest.approx(rest)


def test_a_long_chunk_never_stalls_the_backlog_for_more_than_the_cap(monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(pacing.time, "sleep", slept.append)  # the clock is not what is tested here
    assert pacing.rest_after(30.0, 0.1) == pacing.MAX_REST_S
    assert slept == [pacing.MAX_REST_S]


def test_the_duty_comes_from_the_settings(monkeypatch) -> None:
    from casemgr.config import get_settings

    monkeypatch.setattr(get_settings(), "background_duty", 0.2)
    assert pacing.rest_after(0.01) == pytest.approx(0.04)
