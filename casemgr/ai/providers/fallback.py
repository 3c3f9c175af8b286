"""Try providers in order; when all fail, raise AIUnavailable so intake proceeds without AI."""

from __future__ import annotations

from typing import Any

from casemgr.ai.providers.base import AIError, AIProvider, AIUnavailable
from casemgr.ai.schemas import Classification, ContractFacts, Draft, DraftContext, Suggestion, Summary
from casemgr.ai.suggest import AllowedActions


class FallbackProvider(AIProvider):
    """`FallbackProvider([openai, local])` answers from local when the external model fails;
    `FallbackProvider([openai])` turns any failure into AIUnavailable. `last_used` and `errors`
    tell the caller which provider answered and what went wrong before."""

    name = "fallback"
    drafts_replies = True

    def __init__(self, providers: list[AIProvider]):
        if not providers:
            raise ValueError("need at least one provider")
        self.providers = providers
        self.last_used: AIProvider = providers[0]
        self.errors: list[str] = []

    @property
    def model(self) -> str:
        return self.last_used.model

    def version(self, capability: str) -> tuple[str | None, str | None]:
        return self.last_used.version(capability)

    def _try(self, capability: str, *args: Any, **kwargs: Any) -> Any:
        self.errors = []
        for p in self.providers:
            try:
                result = getattr(p, capability)(*args, **kwargs)
            except AIError as exc:
                self.errors.append(f"{p.name}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a provider bug must not block intake either
                self.errors.append(f"{p.name}: {type(exc).__name__}: {exc}")
                continue
            self.last_used = p
            return result
        raise AIUnavailable("; ".join(self.errors) or "no provider answered")

    def classify(self, text: str) -> Classification:
        return self._try("classify", text)

    def summarize(self, text: str) -> Summary:
        return self._try("summarize", text)

    def suggest(self, text: str, allowed: AllowedActions, context: dict[str, Any] | None = None) -> Suggestion:
        return self._try("suggest", text, allowed, context)

    def extract_contract(self, text: str) -> ContractFacts:
        return self._try("extract_contract", text)

    def draft_reply(self, text: str, context: DraftContext) -> Draft:
        return self._try("draft_reply", text, context)
