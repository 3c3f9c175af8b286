"""The one interface every AI provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from casemgr.ai.schemas import Classification, ContractFacts, Draft, DraftContext, Suggestion, Summary
from casemgr.ai.suggest import AllowedActions

CAPABILITIES = ("classify", "summarize", "suggest", "extract_contract", "draft_reply")


class AIError(Exception):
    """A provider call failed (transport, timeout, rate limit, invalid answer)."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class AIUnavailable(AIError):
    """No provider could answer now: mark the case "AI unavailable" and retry later."""


class AIProvider(ABC):
    name: str = "abstract"
    # Whether it drafts replies (draft_reply); enrichment asks only providers that do.
    drafts_replies: bool = False

    @property
    @abstractmethod
    def model(self) -> str: ...

    @abstractmethod
    def version(self, capability: str) -> tuple[str | None, str | None]:
        """(model_version, prompt_version) used for this capability, for the call record."""

    @abstractmethod
    def classify(self, text: str) -> Classification: ...

    @abstractmethod
    def summarize(self, text: str) -> Summary: ...

    @abstractmethod
    def suggest(self, text: str, allowed: AllowedActions, context: dict[str, Any] | None = None) -> Suggestion: ...

    @abstractmethod
    def extract_contract(self, text: str) -> ContractFacts: ...

    def draft_reply(self, text: str, context: DraftContext) -> Draft:
        """A reply for the agent to edit and send (never sent by AI). `text` is the customer's message."""
        raise AIUnavailable(f"provider {self.name!r} does not draft replies")

    def run(self, capability: str, text: str, **kwargs: Any) -> Any:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return getattr(self, capability)(text, **kwargs)
