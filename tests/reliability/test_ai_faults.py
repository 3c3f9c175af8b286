"""AI provider down, slow past its timeout, answering garbage, schema-violating JSON or HTTP 500.

A real chat-completions server on 127.0.0.1 (tests/reliability/fake_llm.py) stands in for the provider,
with CASEMGR_AI_PROVIDER=openai. Mail arrives over real SMTP. Each test counts messages sent and stored (equal),
checks that the rules alone routed every case, that the case is flagged ai_status=unavailable with a retry job,
and that once the provider recovers the worker's retry enriches every case exactly once.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.bench.serving import free_port
from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild
from casemgr.worker import Worker, load_handlers

from .fake_llm import FakeLLM
from .helpers import assert_consistent, case_count, inbound_count, raw_mail, send_mail

N_MAILS = 6
EXPECTED_ERROR = {"down": "connection error", "slow": "timeout", "garbage": "not valid JSON",
                  "schema": "does not match", "http500": "HTTP 500"}


def use_external_ai(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Point casemgr at the fake provider and publish a policy that allows an external provider (redacted)."""
    from casemgr.ai.providers import openai_provider
    from casemgr.governance import lifecycle
    from casemgr.governance.policy import policy_path

    monkeypatch.setenv("CASEMGR_AI_PROVIDER", "openai")
    monkeypatch.setenv("CASEMGR_OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("CASEMGR_OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("CASEMGR_AI_TIMEOUT_S", "0.5")
    # Without the offline fallback: this is the "no model answers at all" path (the fallback that answers from
    # the local models instead is tested in tests/ai/test_provider_robustness.py).
    monkeypatch.setenv("CASEMGR_AI_FALLBACK_LOCAL", "false")
    monkeypatch.setenv("CASEMGR_INTAKE_ACK", "false")
    rebuild()
    openai_provider._BREAKERS.clear()
    text = policy_path().read_text(encoding="utf-8").replace("external_allowed: false", "external_allowed: true")
    with write_session() as s:
        lifecycle.publish(s, text, actor="user:gov", roles=["governance"], reason="fault test: external provider")


def _send_batch(addr: tuple[str, int], tag: str) -> int:
    sent = 0
    for i in range(N_MAILS):
        to = "contracts@example.com" if i == 0 else "complaints@example.com"
        assert send_mail(addr, raw_mail(f"<{tag}-{i}@example.org>", subject=f"{tag} problem {i}",
                                        body="My card was charged twice and nobody answers.", to=to), to=to) == {}
        sent += 1
    return sent


def _run_worker() -> dict[str, int]:
    load_handlers()
    return Worker(schedule=False).run(once=True)


def _ai_ok_events() -> Counter[int]:
    with read_session() as s:
        rows = s.execute(select(AuditEvent.case_id, AuditEvent.after).where(AuditEvent.action == "ai.status")).all()
    return Counter(cid for cid, after in rows if (after or {}).get("ai_status") == "ok")


@pytest.mark.parametrize("mode", ["down", "slow", "garbage", "schema", "http500"])
def test_provider_fault_keeps_every_message_routes_by_rules_and_retries(
    mode: str, monkeypatch: pytest.MonkeyPatch, intake_smtp: tuple[str, int]
) -> None:
    port = free_port()
    fake = FakeLLM(mode if mode != "down" else "ok", delay_s=2.0, port=port)
    if mode != "down":
        fake.start()
    try:
        use_external_ai(monkeypatch, port)
        sent = _send_batch(intake_smtp, mode)
        assert inbound_count() == sent == case_count() == N_MAILS  # intake never waited on the AI
        stats = _run_worker()
        assert stats.get("done", 0) >= N_MAILS, stats
        queues = get_registry().org.queue_names
        with read_session() as s:
            cases = list(s.execute(select(Case)).scalars())
            retries = list(s.execute(select(Job).where(Job.kind == "ai.enrich", Job.status == "queued")).scalars())
        assert {c.ai_status for c in cases} == {"unavailable"}, [(c.id, c.ai_status) for c in cases]
        for c in cases:
            assert c.rules_result is not None and c.rules_result.get("reason") == "ai unavailable; rules only"
            assert c.queue in queues and c.status == "open"
            error = (c.ai or {}).get("last_error", "")
            assert EXPECTED_ERROR[mode] in error or "circuit open" in error, error
        assert sorted(j.payload["case_id"] for j in retries) == sorted(c.id for c in cases)
        assert all(j.run_at > now() for j in retries), "the retry waits (backoff)"
        if mode != "slow":
            assert fake.requests or mode == "down"

        # The provider recovers; after the backoff the worker's retry enriches each case exactly once.
        fake.mode = "ok"
        if mode == "down":
            fake.start()
        from casemgr.ai.providers import openai_provider

        openai_provider._BREAKERS.clear()  # stands in for the breaker's cooldown passing
        with time_machine.travel(now() + timedelta(minutes=5), tick=True):
            _run_worker()
            _run_worker()  # a second pass finds nothing left to do
        with read_session() as s:
            cases = list(s.execute(select(Case)).scalars())
        assert {c.ai_status for c in cases} == {"ok"}
        assert _ai_ok_events() == Counter({c.id: 1 for c in cases})
        counts = assert_consistent()
        assert counts["messages"] == sent == N_MAILS and counts["cases"] == N_MAILS
    finally:
        fake.stop()
