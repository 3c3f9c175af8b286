"""The openai provider drafts replies freely under the same policy, against a real loopback chat-completions server:
structured output with the Draft schema, the case facts and macros as data, repair on a bad answer, and the local
draft as the recorded fallback."""

from __future__ import annotations

import json
from typing import Any

from casemgr.ai.providers import FallbackProvider, LocalProvider
from casemgr.ai.providers.openai_provider import OpenAIProvider
from casemgr.ai.providers.resilience import CircuitBreaker
from casemgr.ai.schemas import DraftContext, MacroText
from casemgr.ai.service import run_capability

SUBJECT = "Charged twice at FreshMart on March 3"
TEXT = "My card ending 4111 1111 1111 1111 was charged $35.00 twice at FreshMart on March 3, 2024. Mail me at a@b.org"
GOOD = {"text": "Dear Jane Doe,\n\nI understand you were charged $35.00 twice on March 3, 2024. We will review the "
                "charge and come back to you.\n\nKind regards,\nAnn Agent",
        "confidence": 0.77, "evidence": ["amount $35.00", "date March 3, 2024"], "sources": ["complaint-acknowledge"]}


def ctx() -> DraftContext:
    return DraftContext(case_type="complaint", stage="intake", reference="CMP-000042", subject=SUBJECT,
                        customer_name="Jane Doe", agent_name="Ann Agent", intent="dispute_charge",
                        intent_confidence=0.8, amounts=["$35.00"], dates=["March 3, 2024"],
                        fields={"account_id": "4111 1111 1111 1111"},
                        macros=[MacroText(name="complaint-acknowledge", title="Acknowledge", stages=["intake"],
                                          reply="Dear {{ customer_name }},\n\nYour reference is {{ case.reference }}.\n\n"
                                                "Kind regards,\n{{ agent_name }}")],
                        sops={"sop/complaint-acknowledge.md": "3. Never promise an outcome or a refund."})


def make(server: Any, **kw: Any) -> OpenAIProvider:
    opts: dict[str, Any] = {"base_url": server.base_url, "model": "test-model", "api_key": "k", "timeout_s": 2.0,
                            "max_retries": 2, "backoff_s": 0.01, "breaker": CircuitBreaker(threshold=50, cooldown_s=60)}
    opts.update(kw)
    return OpenAIProvider(**opts)


def test_a_valid_draft_is_parsed_and_the_facts_travel_as_data(chat_server: Any) -> None:
    chat_server.replies.append(GOOD)
    d = make(chat_server).draft_reply(TEXT, ctx())
    assert d.text == GOOD["text"] and d.confidence == 0.77 and d.sources == ["complaint-acknowledge"]
    body = chat_server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Draft"
    assert body["max_tokens"] == 1024  # a reply is longer than a label: twice the provider's limit
    system, user = body["messages"]
    assert "never send" in system["content"] and "Never promise a refund" in system["content"]
    data = json.loads(user["content"])
    # The customer's text is data, redacted; the case facts and the team's macros and SOPs go along.
    assert "4111" not in data["untrusted_input"] and "a@b.org" not in data["untrusted_input"]
    assert data["case"]["customer_name"] == "Jane Doe" and data["case"]["intent"] == "dispute_charge"
    assert data["case"]["amounts"] == ["$35.00"] and "4111" not in json.dumps(data["case"]["fields"])
    assert "subject" not in data["case"]  # the model is not handed the subject to repeat
    assert data["macros"][0]["name"] == "complaint-acknowledge" and "sop/complaint-acknowledge.md" in data["sops"]


def test_an_echo_or_a_repeated_subject_is_repaired(chat_server: Any) -> None:
    echo = {**GOOD, "text": f"Dear Jane,\n\nRe: {SUBJECT}. We are on it.\n\nKind regards"}
    chat_server.replies.extend([echo, GOOD])
    d = make(chat_server).draft_reply(TEXT, ctx())
    assert d.text == GOOD["text"]
    first, second = (r["body"] for r in chat_server.requests)
    assert second["temperature"] > first["temperature"] == 0
    assert "repeats the case subject" in second["messages"][-1]["content"]


def test_a_failing_server_falls_back_to_the_local_draft_and_says_so(chat_server: Any) -> None:
    chat_server.replies.extend(["not json", ("echo",), {"text": "", "confidence": 2}])
    provider = FallbackProvider([make(chat_server), LocalProvider()])
    out = run_capability(provider, "draft_reply", TEXT, context=ctx().model_dump(mode="json"))
    assert out.ok and out.status == "fallback"
    assert out.record["provider"] == "local:fallback" and out.record["error"].startswith("fallback after: openai:")
    assert out.output is not None and out.output["text"].startswith("Dear Jane Doe,")
    assert "disputing a charge of $35.00 on March 3, 2024" in out.output["text"]
    assert len(chat_server.requests) == 3  # first try plus two repairs, then the offline draft
