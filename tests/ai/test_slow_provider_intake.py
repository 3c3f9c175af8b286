"""No database transaction is held open during an AI call (issue 17).

Seen before: the worker held SQLite's write lock while it waited for the model, so an intake POST took 25.9 s.
Here a real loopback chat server answers after 30 s; while the worker waits on it, API intake POSTs are timed.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from casemgr.db import read_session, write_session
from casemgr.governance import enrich
from casemgr.jobs.models import Job
from casemgr.jobs.service import claim, run_claimed

pytestmark = [pytest.mark.slow, pytest.mark.timing, pytest.mark.sqlite_only]  # POST times against a 2 s bound

GOOD = {"category": {"label": "credit_card", "confidence": 0.8}, "urgency": {"label": "high", "confidence": 0.7},
        "sentiment": {"label": "negative", "confidence": 0.9}}


def test_intake_stays_fast_while_the_worker_waits_30s_on_a_slow_provider(client: Any, chat_server: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.ai.providers.openai_provider import OpenAIProvider
    from casemgr.ai.providers.resilience import CircuitBreaker
    from casemgr.runtime import rebuild
    from casemgr.users import service as users

    monkeypatch.setenv("CASEMGR_AI_INLINE", "false")  # AI after the commit, in the worker (the served default)
    rebuild()
    with write_session() as s:
        _, key = users.create_api_key(s, "crm", None, ["intake"])
    res = client.post("/api/intake", json={"subject": "Card charged twice", "body": "Charged twice for one purchase."},
                      headers={"X-API-Key": key})
    assert res.status_code == 201
    def post_times(n: int, tag: str) -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            r = client.post("/api/intake", json={"subject": f"Fee {tag} {i}", "body": "An unexpected fee on my account."},
                            headers={"X-API-Key": key})
            out.append(time.perf_counter() - t0)
            assert r.status_code == 201, r.text
        return out

    baseline = post_times(10, "before")  # same run, same machine load, no slow provider in flight
    # Each answer is held up to 30 s, and released as soon as the POSTs below are measured: the test does not
    # sit out the rest of the 30 s (it runs alone at the end of scripts/test.sh, so its idle time is CI's).
    chat_server.replies.extend([("hold", 30.0, json.dumps(GOOD))] * 3)
    slow = OpenAIProvider(base_url=chat_server.base_url, model="slow", api_key="k", timeout_s=35.0, max_retries=0,
                          latency_budget_s=35.0, breaker=CircuitBreaker(threshold=50, cooldown_s=60))
    # The policy must let an external provider see the text, else enrich stops before calling it.
    import yaml

    from casemgr.config import get_settings
    from casemgr.governance.policy import parse_policy

    data = yaml.safe_load((get_settings().policies_dir / "ai-policy.yaml").read_text(encoding="utf-8"))
    data["providers"]["external_allowed"] = True
    external = parse_policy(yaml.safe_dump(data), "test-policy.yaml")
    monkeypatch.setattr(enrich, "active_policy", lambda session=None: external)
    enrich.set_provider_factory(lambda: slow)
    errors: list[BaseException] = []
    try:
        with read_session() as s:
            job_ids = [j.id for j in s.execute(select(Job).where(Job.kind == enrich.JOB_KIND)).scalars()]
        assert job_ids
        claimed = claim("w-slow", limit=1)

        def work() -> None:
            try:
                run_claimed(claimed[0], "w-slow")
            except BaseException as exc:  # noqa: BLE001 - reported to the test below
                errors.append(exc)

        t = threading.Thread(target=work)
        t.start()
        deadline = time.monotonic() + 5
        while not chat_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chat_server.requests, "the worker never called the provider"
        timings = post_times(10, "during")
        assert t.is_alive(), "the provider answered early: the test did not overlap the slow call"
        # Before the fix every POST here waited for the 30 s call (the worker held the write lock). Now intake
        # runs as fast as without the slow call: 200 ms on a quiet machine; on a loaded one, compared with the
        # same run's baseline rather than a fixed number.
        med = sorted(timings)[len(timings) // 2]
        base = sorted(baseline)[len(baseline) // 2]
        assert max(timings) < 2.0, timings
        assert med < max(0.2, 3 * base), (timings, baseline)
    finally:
        chat_server.release.set()
        t.join(60)
        enrich.set_provider_factory(None)
    assert not errors, errors
