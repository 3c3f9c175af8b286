"""Provider selection from settings: CASEMGR_AI_PROVIDER=local (default) or openai."""

from __future__ import annotations

from typing import Any

from casemgr.ai.providers.base import CAPABILITIES, AIError, AIProvider, AIUnavailable
from casemgr.ai.providers.fallback import FallbackProvider
from casemgr.ai.providers.local import LocalProvider

__all__ = ["CAPABILITIES", "AIError", "AIProvider", "AIUnavailable", "FallbackProvider", "LocalProvider", "get_provider"]


def get_provider(name: str | None = None, settings: Any = None) -> AIProvider:
    if settings is None:
        from casemgr.config import get_settings

        settings = get_settings()
    name = (name or getattr(settings, "ai_provider", "local") or "local").lower()
    if name == "local":
        return LocalProvider()
    if name == "openai":
        from casemgr.ai.providers.openai_provider import OpenAIProvider

        remote = OpenAIProvider.from_settings(settings)
        if getattr(settings, "ai_fallback_local", True):
            # After a failure or with the circuit open, each capability is answered by the offline models,
            # and the call record says so (casemgr.ai.service.run_capability).
            return FallbackProvider([remote, LocalProvider()])
        return remote
    raise ValueError(f"unknown AI provider {name!r} (expected 'local' or 'openai')")
