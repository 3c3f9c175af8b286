"""Any OpenAI-compatible chat-completions server (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp).

Inbound text is sent as a JSON data field, never as instructions, optionally with PII redacted.
Every answer must parse as JSON and validate against the capability's pydantic schema; labels
and actions outside the allowed sets are rejected. Transport errors, 429/5xx, timeouts and
invalid answers are retried a bounded number of times behind a circuit breaker.

Robustness against real local servers (llama.cpp, Ollama, vLLM), issue 17:
- every request carries `max_tokens`; an answer cut at that limit (finish_reason "length") is an error;
- structured output: a `json_schema` response format built from the capability's pydantic model when the
  server accepts it, `json_object` otherwise (remembered per provider after the first refusal);
- a failed answer is not simply asked again at temperature 0 (that repeats the same failure): the retry
  is a repair request, at a higher temperature, that tells the model what was wrong;
- one latency budget bounds all attempts of one call together, so a slow server cannot hold a worker.
"""

from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

import openai
from pydantic import BaseModel, ValidationError

from casemgr.ai.providers.base import AIError, AIProvider
from casemgr.ai.providers.resilience import CircuitBreaker, call_with_retries
from casemgr.ai.redact import ALL_KINDS, redact
from casemgr.ai.schemas import (
    CLAUSES,
    Classification,
    ContractFacts,
    Draft,
    DraftContext,
    Suggestion,
    Summary,
    empty_clauses,
)
from casemgr.ai.suggest import AllowedActions, _normalise_allowed, enforce_allowed

PROMPT_VERSIONS = {"classify": "classify.v1", "summarize": "summarize.v1", "suggest": "suggest.v1",
                   "extract_contract": "extract_contract.v1", "draft_reply": "draft_reply.v1"}
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
    drafts_replies = True

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
        max_tokens: int = 512,
        latency_budget_s: float = 30.0,
        repair_temperature: float = 0.7,
    ):
        self._model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.redact_pii = redact_pii
        self.labels = tuple(labels or DEFAULT_LABELS)
        self.max_input_chars = max_input_chars
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.latency_budget_s = latency_budget_s
        self.repair_temperature = repair_temperature
        self._json_schema_ok: bool | None = None  # None: not tried yet on this server
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
            max_tokens=int(getattr(settings, "ai_max_tokens", 512)),
            latency_budget_s=float(getattr(settings, "ai_latency_budget_s", 30.0)),
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

    def _response_format(self, schema: type[BaseModel] | None) -> dict[str, Any]:
        if schema is not None and self._json_schema_ok is not False:
            return {"type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False}}
        return {"type": "json_object"}

    def _create(self, messages: list[dict[str, str]], temperature: float, max_tokens: int,
                schema: type[BaseModel] | None, timeout_s: float) -> Any:
        fmt = self._response_format(schema)
        try:
            return self.client.chat.completions.create(
                model=self._model, messages=messages, temperature=temperature, max_tokens=max_tokens,
                response_format=fmt, timeout=timeout_s,  # type: ignore[call-overload]
            )
        except openai.BadRequestError as exc:
            # A server without JSON-schema output refuses the format: remember it and ask for plain JSON.
            unsupported = any(w in str(exc).lower() for w in ("response_format", "json_schema", "schema", "grammar"))
            if fmt["type"] == "json_schema" and self._json_schema_ok is None and unsupported:
                self._json_schema_ok = False
                return self._create(messages, temperature, max_tokens, None, timeout_s)
            raise exc

    def _complete_once(self, system: str, user: str, *, schema: type[BaseModel] | None = None,
                       temperature: float = 0.0, repair: str | None = None, max_tokens: int | None = None,
                       timeout_s: float | None = None) -> dict[str, Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if repair:
            messages.append({"role": "user", "content": (
                f"Your previous answer was rejected: {repair[:300]}. Answer again with only one JSON object that "
                "matches the required fields. Do not repeat the input.")})
        try:
            resp = self._create(messages, temperature, max_tokens or self.max_tokens, schema,
                                timeout_s if timeout_s is not None else self.timeout_s)
            if schema is not None and self._json_schema_ok is None:
                self._json_schema_ok = True
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
            choice = resp.choices[0]
            content = choice.message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise AIError("response has no message content") from exc
        if getattr(choice, "finish_reason", None) == "length":
            raise AIError(f"answer cut at max_tokens={max_tokens or self.max_tokens}")
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
             subs: dict[str, str] | None = None, extra: dict[str, Any] | None = None, limit: int | None = None,
             max_tokens: int | None = None) -> Any:
        system = load_prompt(PROMPT_VERSIONS[capability]).safe_substitute(subs or {})
        user = self._data_message(text, extra, limit)
        deadline = time.monotonic() + self.latency_budget_s
        state: dict[str, Any] = {"attempt": 0, "error": None}

        def once() -> Any:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise AIError(f"latency budget of {self.latency_budget_s}s used up", retryable=False)
            first = state["attempt"] == 0
            state["attempt"] += 1
            try:
                data = self._complete_once(
                    system, user, schema=schema, temperature=0.0 if first else self.repair_temperature,
                    repair=None if first else state["error"], max_tokens=max_tokens,
                    timeout_s=min(self.timeout_s, remaining))
                try:
                    obj = schema.model_validate(data)
                except ValidationError as exc:
                    raise AIError(f"answer does not match the {schema.__name__} schema: {exc.errors()[:3]}") from exc
                return check(obj) if check else obj
            except AIError as exc:
                state["error"] = str(exc)
                raise

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

    def draft_reply(self, text: str, context: DraftContext) -> Draft:
        """A free draft under the same policy: the macros and SOPs go along as examples and rules, the customer's
        message as data. An echo of the input, an empty text or a reply that repeats the case subject is refused
        (the repair retry says why) and the local draft answers through the fallback."""
        subject = " ".join(context.subject.split()).lower()

        def check(d: Draft) -> Draft:
            body = " ".join(d.text.split())
            if len(body) < 20:
                raise AIError("the draft is empty or too short")
            if "untrusted_input" in d.text or body.lower() == " ".join(text.split()).lower():
                raise AIError("the draft repeats the input instead of answering it")
            if len(subject) >= 12 and subject in body.lower():
                raise AIError("the draft repeats the case subject; answer the customer instead")
            return d

        case = context.model_dump(mode="json", exclude={"macros", "sops", "subject"})
        if self.redact_pii:  # case fields (an account id, a card number) are redacted like the message
            case["fields"] = {k: redact(v, ALL_KINDS) if isinstance(v, str) else v
                              for k, v in (case.get("fields") or {}).items()}
        extra = {"case": case, "macros": [{"name": m.name, "title": m.title, "reply": m.reply[:2000]}
                                          for m in context.macros[:8]],
                 "sops": {path: sop[:1500] for path, sop in list(context.sops.items())[:4]}}
        return self._ask("draft_reply", text, Draft, check, extra=extra, max_tokens=self.max_tokens * 2)

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
                         limit=self.max_input_chars * 8, max_tokens=self.max_tokens * 4)
