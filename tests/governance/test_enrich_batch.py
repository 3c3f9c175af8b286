"""Batched AI enrichment (issue 23): one claim, one classify batch, one write transaction per batch, while the
policy choke point and the AI call records stay per case."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from casemgr.ai.models import AICall
from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.governance import enrich, enrich_plan
from casemgr.governance.models import AIDecision
from casemgr.jobs.models import Job

from .util import new_case as _new_case


def new_case(s: Any, **kw: Any) -> Any:
    """A case as intake leaves it: created, and its AI work queued for the worker."""
    case = _new_case(s, **kw)
    enrich.enrich_inline_or_enqueue(s, case)
    return case


@pytest.fixture(autouse=True)
def _worker_ai(monkeypatch: pytest.MonkeyPatch) -> Any:
    from casemgr.config import reset_settings

    monkeypatch.setenv("CASEMGR_AI_INLINE", "false")
    reset_settings()
    yield
    enrich.set_provider_factory(None)


def test_a_burst_is_enriched_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.ai.providers.local import LocalProvider
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    sizes: list[int] = []
    real = LocalProvider.classify_batch

    def spy(self: LocalProvider, texts: list[str]) -> Any:
        sizes.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(LocalProvider, "classify_batch", spy)
    with write_session() as s:
        ids = [new_case(s, subject=f"Card charged twice {i}", description="My credit card was charged twice.").id
               for i in range(12)]
    assert Worker(schedule=False).run_one() is True
    assert sizes and sizes[0] == 12  # one batched classify call for the whole burst
    with read_session() as s:
        assert {c.ai_status for c in s.execute(select(Case).where(Case.id.in_(ids))).scalars()} == {"ok"}
        jobs = list(s.execute(select(Job).where(Job.kind == enrich.JOB_KIND)).scalars())
        assert jobs and {j.status for j in jobs} == {"done"}
        per_case = dict(s.execute(select(AICall.case_id, func.count()).where(AICall.capability == "classify")
                                  .group_by(AICall.case_id)).all())
        assert per_case == {i: 1 for i in ids}  # one classify record per case
        decided = {d for (d,) in s.execute(select(AIDecision.case_id).distinct())}
        assert decided == set(ids)  # every case went through the policy


def test_a_case_that_fails_is_retried_and_the_others_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    with write_session() as s:
        ids = [new_case(s, subject=f"Fee {i}", description="An unexpected fee on my account.").id for i in range(4)]
    bad = ids[1]
    real = enrich.apply_results

    def flaky(session: Any, prep: Any, calls: Any, provider: Any, attempt: int = 0) -> Any:
        if getattr(prep, "case_id", None) == bad:
            raise RuntimeError("boom")
        return real(session, prep, calls, provider, attempt)

    monkeypatch.setattr(enrich, "apply_results", flaky)
    real_plan = enrich_plan.plan

    def unplannable(prep: Any, *args: Any) -> Any:  # the bad case goes to the ordinary writer, which fails
        return None if prep.case_id == bad else real_plan(prep, *args)

    monkeypatch.setattr(enrich_plan, "plan", unplannable)
    Worker(schedule=False).run_one()
    with read_session() as s:
        status = {c.id: c.ai_status for c in s.execute(select(Case).where(Case.id.in_(ids))).scalars()}
        assert status[bad] != "ok" and all(status[i] == "ok" for i in ids if i != bad)
        job = s.execute(select(Job).where(Job.kind == enrich.JOB_KIND, Job.payload["case_id"].as_integer() == bad)).scalar_one()
        assert job.status == "failed" and "boom" in (job.last_error or "")
