"""The drain figure (`ai_drain_per_s` of `casemgr bench intake`) times a worker past its start-up."""

from __future__ import annotations

from typing import Any

import pytest

from casemgr.bench import intake_http
from casemgr.governance import enrich


def test_the_first_batch_is_start_up_and_the_rest_is_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.jobs import service as jobs
    from casemgr.worker import load_handlers

    load_handlers()
    batches: list[int] = []
    handler, size = jobs.BATCH_HANDLERS[enrich.JOB_KIND]

    def counting(batch: list[int], worker_id: str) -> Any:
        batches.append(len(batch))
        return handler(batch, worker_id)

    monkeypatch.setitem(jobs.BATCH_HANDLERS, enrich.JOB_KIND, (counting, size))
    backlog = intake_http.top_up_backlog(size + 10)
    res = intake_http.measure_drain(size + 10, limit=5)
    assert res["ai_backlog"] == backlog and res["ai_drained"] == backlog  # everything ran
    assert batches[0] == size  # the first, untimed batch
    assert res["ai_drain_timed"] == backlog - size == sum(batches[1:])
    assert res["ai_drain_per_s"] > 0 and res["ai_drain_cpu_ms_per_case"] > 0
