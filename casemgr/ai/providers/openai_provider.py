"""Any OpenAI-compatible chat-completions server (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp).

Inbound text is sent as a JSON data field, never as instructions, optionally with PII redacted.
Every answer must parse as JSON and validate against the capability's pydantic schema; labels
and actions outside the allowed sets are rejected. Transport errors, 429/5xx, timeouts and
invalid answers are retried a bounded number of times behind a circuit breaker.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

import openai
from pydantic import BaseModel, ValidationError

from casemgr.ai.providers.base import AIError, AIProvider
from casemgr.ai.providers.resilience import CircuitBreaker, call_with_retries
from casemgr.ai.redact import ALL_KINDS, redact
from casemgr.ai.schemas import CLAUSES, Classification, ContractFacts, Suggestion, Summary, empty_clauses
from casemgr.ai.suggest import AllowedActions, _normalise_allowed, enforce_allowed

PROMPT_VERSIONS = {"classify": "classify.v1", "summarize": "summarize.v1", "suggest": "suggest.v1",
                   "extract_contract": "extract_contract.v1"}
DEFAULT_LABELS = ("credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking")
_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def load_prompt(version: str) -> Template:
    text = resources.files("casemgr.ai").joinpath(f"prompts/{version}.txt").read_text(encoding="utf-8")
    return Template(text)


def breaker_for(key: str, threshold: int = 5, cooldown_s: float = 30.0) -> CircuitBreaker:
    with _BREAKERS_LOCK:
        if key not in _BREAKERS:
            _BREAKERS[key] = CircuitBreaker(threshold=threshold, cooldown_s=cooldown_s)
        return _BREAKERS[key]


class OpenAIProvider(AIProvider):
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        redact_pii: bool = True,
        labels: tuple[str, ...] | list[str] | None = None,
        breaker: CircuitBreaker | None = None,
        max_input_chars: int = 12000,
        backoff_s: float = 0.2,
    ):
        self._model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.redact_pii = redact_pii
        self.labels = tuple(labels or DEFAULT_LABELS)
        self.max_input_chars = max_input_chars
        self.backoff_s = backoff_s
        # The client's own retries are off: we retry ourselves so the breaker sees every failure.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)
        self.breaker = breaker or breaker_for(f"{base_url}|{model}")

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIProvider:
        return cls(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            timeout_s=float(settings.ai_timeout_s),
            max_retries=int(getattr(settings, "ai_max_retries", 2)),
            redact_pii=bool(getattr(settings, "ai_redact_pii", True)),
        )

    @property
    def model(self) -> str:
        return self._model

    def version(self, capability: str) -> tuple[str | None, str | None]:
        return self._model, PROMPT_VERSIONS.get(capability)

    # ------------------------------------------------------------ transport
    def _data_message(self, text: str, extra: dict[str, Any] | None = None, limit: int | None = None) -> str:
        text = text[: limit or self.max_input_chars]
        if self.redact_pii:
            text = redact(text, ALL_KINDS)
        return json.dumps({"untrusted_input": text, **(extra or {})}, ensure_ascii=False)

    def _complete_once(self, system: str, user: str) -> dict[str, Any]:
        try:
            resp = self.client.chat.completions.create(
                model=self._model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                temperature=0,
                response_format={"type": "json_object"},
            )
        except openai.RateLimitError as exc:
            raise AIError(f"rate limited (429): {exc}") from exc
        except openai.APITimeoutError as exc:
            raise AIError(f"timeout after {self.timeout_s}s") from exc
        except openai.APIConnectionError as exc:
            raise AIError(f"connection error: {exc}") from exc
        except openai.APIStatusError as exc:
            # 4xx other than 408/409/429 will not get better by retrying.
            retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
            raise AIError(f"HTTP {exc.status_code}: {exc.message}", retryable=retryable) from exc
        try:
            content = resp.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise AIError("response has no message content") from exc
        content = content.strip()
        if content.startswith("```"):
            content = content.strip("`").removeprefix("json").strip()
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise AIError(f"answer is not valid JSON: {content[:200]!r}") from exc
        if not isinstance(data, dict):
            raise AIError("answer is not a JSON object")
        return data

    def _ask(self, capability: str, text: str, schema: type[BaseModel], check: Any = None,
             subs: dict[str, str] | None = None, extra: dict[str, Any] | None = None, limit: int | None = None) -> Any:
        system = load_prompt(PROMPT_VERSIONS[capability]).safe_substitute(subs or {})
        user = self._data_message(text, extra, limit)

        def once() -> Any:
            data = self._complete_once(system, user)
            try:
                obj = schema.model_validate(data)
            except ValidationError as exc:
                raise AIError(f"answer does not match the {schema.__name__} schema: {exc.errors()[:3]}") from exc
            return check(obj) if check else obj

        return call_with_retries(once, breaker=self.breaker, max_retries=self.max_retries, base_delay_s=self.backoff_s)

    # ------------------------------------------------------------ capabilities
    def classify(self, text: str) -> Classification:
        def check(c: Classification) -> Classification:
            if c.category.label not in self.labels:
                raise AIError(f"category {c.category.label!r} is not one of the known labels")
            if c.urgency.label not in ("low", "normal", "high", "critical"):
                raise AIError(f"urgency {c.urgency.label!r} is invalid")
            if c.sentiment.label not in ("negative", "neutral", "positive"):
                raise AIError(f"sentiment {c.sentiment.label!r} is invalid")
            return c

        return self._ask("classify", text, Classification, check, {"labels": ", ".join(self.labels)})

    def summarize(self, text: str) -> Summary:
        def check(s: Summary) -> Summary:
            if not s.sentences:
                s = s.model_copy(update={"sentences": [s.summary][:1]})
            return s

        return self._ask("summarize", text, Summary, check)

    def suggest(self, text: str, allowed: AllowedActions, context: dict[str, Any] | None = None) -> Suggestion:
        names = list(_normalise_allowed(allowed))

        def check(s: Suggestion) -> Suggestion:
            out = enforce_allowed(s, names)
            if s.action is not None and out.action is None:
                # An off-list action means the model was steered or confused: do not trust the rest.
                raise AIError(f"suggested action {s.action!r} is not allowed", retryable=False)
            return out

        extra = {"case_context": {k: v for k, v in (context or {}).items() if isinstance(v, str | int | float | bool)}}
        return self._ask("suggest", text, Suggestion, check, {"allowed": json.dumps(names)}, extra)

    def extract_contract(self, text: str) -> ContractFacts:
        def check(f: ContractFacts) -> ContractFacts:
            unknown = set(f.clauses) - set(CLAUSES)
            if unknown:
                raise AIError(f"unknown clause names: {sorted(unknown)}")
            clauses = empty_clauses()
            clauses.update(f.clauses)
            return f.model_copy(update={"clauses": clauses})

        # Contracts are long; send more of them than of an email.
        return self._ask("extract_contract", text, ContractFacts, check, {"clauses": ", ".join(CLAUSES)},
                         limit=self.max_input_chars * 8)
