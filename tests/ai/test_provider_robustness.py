"""The openai provider against a real loopback server that misbehaves as real local servers do (issue 17):
slow, non-JSON, echoing its input, cutting answers at the token limit, refusing JSON-schema output.
After repair attempts fail, the offline provider answers and the call record says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

from casemgr.ai.providers import FallbackProvider, LocalProvider
from casemgr.ai.providers.openai_provider import OpenAIProvider
from casemgr.ai.providers.resilience import CircuitBreaker
from casemgr.ai.service import run_capability

GOOD = {"category": {"label": "credit_card", "confidence": 0.8}, "urgency": {"label": "high", "confidence": 0.7},
        "sentiment": {"label": "negative", "confidence": 0.9}}
TEXT = "My credit card was charged twice for the same purchase and the bank refuses to refund it."


def make(server: Any, **kw: Any) -> OpenAIProvider:
    opts: dict[str, Any] = {"base_url": server.base_url, "model": "test-model", "api_key": "k", "timeout_s": 2.0,
                            "max_retries": 2, "backoff_s": 0.01, "breaker": CircuitBreaker(threshold=50, cooldown_s=60)}
    opts.update(kw)
    return OpenAIProvider(**opts)


def test_retry_is_a_repair_at_another_temperature(chat_server: Any) -> None:
    chat_server.replies.extend(["sure! here you go", GOOD])
    c = make(chat_server).classify(TEXT)
    assert c.category.label == "credit_card"
    first, second = (r["body"] for r in chat_server.requests)
    assert first["temperature"] == 0 and second["temperature"] > 0
    assert len(second["messages"]) == 3 and "rejected" in second["messages"][-1]["content"]
    assert "not valid JSON" in second["messages"][-1]["content"]


def test_answer_cut_at_max_tokens_is_not_accepted(chat_server: Any) -> None:
    chat_server.replies.extend([("length", json.dumps(GOOD)), GOOD])
    c = make(chat_server, max_tokens=64).classify(TEXT)
    assert c.category.label == "credit_card"
    assert [r["body"]["max_tokens"] for r in chat_server.requests] == [64, 64]
    assert len(chat_server.requests) == 2  # the cut answer was refused even though it parsed


def test_server_without_json_schema_gets_json_object(chat_server: Any) -> None:
    chat_server.reject_json_schema = True
    chat_server.replies.extend([GOOD, GOOD])
    p = make(chat_server)
    assert p.classify(TEXT).category.label == "credit_card"
    assert p.classify(TEXT).category.label == "credit_card"
    kinds = [r["body"]["response_format"]["type"] for r in chat_server.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]  # refused once, then remembered


@pytest.mark.parametrize("bad", [("echo",), "not json at all", ("length", "{\"category\": {\"lab")])
def test_persistent_failure_falls_back_to_local_and_is_recorded(chat_server: Any, bad: Any) -> None:
    chat_server.default = 500
    chat_server.replies.extend([bad, bad, bad])
    provider = FallbackProvider([make(chat_server), LocalProvider()])
    outcome = run_capability(provider, "classify", TEXT)
    assert outcome.ok and outcome.status == "fallback"
    assert outcome.record["provider"] == "local:fallback"
    assert outcome.record["error"].startswith("fallback after: openai:")
    assert outcome.output is not None and outcome.output["category"]["label"] in LocalProvider().category_model.labels
    assert len(chat_server.requests) == 3  # bounded: first try plus two repairs


def test_slow_server_is_bounded_by_the_latency_budget(chat_server: Any) -> None:
    # The server holds each answer for 30 s, well inside the request timeout (60 s): a call that waited for it
    # would get the server's answer. Only the latency budget (1 s) can end the call early, so the local fallback
    # answering while the server still holds every answer shows the budget at work, with no wall-time figure.
    chat_server.replies.extend([("hold", 30.0, json.dumps(GOOD))] * 5)
    provider = FallbackProvider([make(chat_server, timeout_s=60.0, latency_budget_s=1.0), LocalProvider()])
    outcome = run_capability(provider, "classify", TEXT)
    assert chat_server.answered == 0, "the call waited for the held answer"
    assert outcome.ok and outcome.record["provider"] == "local:fallback"
    assert "timeout" in outcome.record["error"] or "budget" in outcome.record["error"]
    assert 1 <= len(chat_server.requests) <= 3  # the budget also bounds the retries


def test_get_provider_openai_falls_back_to_local_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.ai.providers import get_provider
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_AI_PROVIDER", "openai")
    monkeypatch.setenv("CASEMGR_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    rebuild()
    p = get_provider()
    assert isinstance(p, FallbackProvider) and [x.name for x in p.providers] == ["openai", "local"]
    monkeypatch.setenv("CASEMGR_AI_FALLBACK_LOCAL", "false")
    rebuild()
    assert get_provider().name == "openai"
