"""Call a provider for one capability and describe the call as a record the caller stores (AICall).

`run_capability` never raises for provider trouble: it returns ok=False with the error, so intake
can mark the case "AI unavailable", route it by rules and retry later.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from casemgr.ai.providers.base import CAPABILITIES, AIError, AIProvider, AIUnavailable

AI_UNAVAILABLE = "AI unavailable"


def input_hash(capability: str, text: str, extra: Any = None) -> str:
    h = hashlib.sha256()
    h.update(capability.encode())
    h.update(b"\0")
    h.update(text.encode("utf-8", "replace"))
    if extra is not None:
        h.update(b"\0")
        h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def output_confidence(capability: str, output: dict[str, Any] | None) -> float | None:
    if not output:
        return None
    if capability == "classify":
        return float(output["category"]["confidence"])
    if capability == "suggest":
        return float(output.get("confidence") or 0.0)
    if capability == "draft_reply":
        return float(output.get("confidence") or 0.0)
    if capability == "extract_contract":
        confs = [c.get("confidence") for c in output.get("clauses", {}).values() if c.get("confidence") is not None]
        return round(sum(confs) / len(confs), 4) if confs else None
    return None


def call_record(
    *,
    capability: str,
    provider: str,
    model: str | None,
    model_version: str | None,
    prompt_version: str | None,
    input_sha256: str,
    output: dict[str, Any] | None,
    latency_ms: float,
    error: str | None = None,
    case_id: int | None = None,
) -> dict[str, Any]:
    """A plain dict with exactly the columns of casemgr.ai.models.AICall (minus id/created_at)."""
    return {
        "case_id": case_id,
        "capability": capability,
        "provider": provider,
        "model": model,
        "model_version": model_version,
        "prompt_version": prompt_version,
        "input_hash": input_sha256,
        "output": output,
        "confidence": output_confidence(capability, output),
        "latency_ms": round(latency_ms, 2),
        "error": error,
    }


@dataclass
class AIOutcome:
    ok: bool
    output: dict[str, Any] | None
    record: dict[str, Any]
    error: str | None = None
    status: str = "ok"  # ok | AI unavailable
    extra: dict[str, Any] = field(default_factory=dict)


def run_capability(
    provider: AIProvider,
    capability: str,
    text: str,
    *,
    case_id: int | None = None,
    allowed: Any = None,
    context: dict[str, Any] | BaseModel | None = None,
) -> AIOutcome:
    """Call one capability and record it. A draft's `context` may be the DraftContext itself (the worker builds
    it validated) or its JSON form (validated here); either way its JSON form is part of the input hash."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    model_context: BaseModel | None = None
    context_json: dict[str, Any] | None
    if isinstance(context, BaseModel):
        model_context, context_json = context, context.model_dump(mode="json")
    else:
        context_json = context
    extra = {"allowed": list(allowed) if allowed is not None else None, "context": context_json} \
        if capability == "suggest" else {"context": context_json} if capability == "draft_reply" else None
    ihash = input_hash(capability, text, extra)
    t0 = time.perf_counter()
    error: str | None = None
    output: dict[str, Any] | None = None
    try:
        if capability == "suggest":
            result: BaseModel = provider.suggest(text, allowed or [], context_json)
        elif capability == "draft_reply":
            from casemgr.ai.schemas import DraftContext

            draft_context = model_context if isinstance(model_context, DraftContext) \
                else DraftContext.model_validate(context_json or {})
            result = provider.draft_reply(text, draft_context)
        else:
            result = getattr(provider, capability)(text)
        output = result.model_dump(mode="json")
    except AIUnavailable as exc:
        error = f"AIUnavailable: {exc}"
    except AIError as exc:
        error = f"AIError: {exc}"
    except Exception as exc:  # noqa: BLE001 - provider bugs are recorded, intake goes on
        error = f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - t0) * 1000
    try:
        model_version, prompt_version = provider.version(capability)
    except Exception:  # noqa: BLE001 - e.g. the artefact could not be loaded
        model_version, prompt_version = None, None
    record = call_record(
        capability=capability, provider=getattr(getattr(provider, "last_used", provider), "name", provider.name),
        model=_safe_model(provider), model_version=model_version, prompt_version=prompt_version,
        input_sha256=ihash, output=output, latency_ms=latency_ms, error=error, case_id=case_id,
    )
    if error:
        return AIOutcome(ok=False, output=None, record=record, error=error, status=AI_UNAVAILABLE)
    fell_back = getattr(provider, "errors", None)
    if fell_back:
        # Answered, but not by the first provider: the record names the fallback and why it was used.
        record["provider"] = f"{record['provider']}:fallback"[:40]
        record["error"] = "fallback after: " + "; ".join(fell_back)[:1900]
        return AIOutcome(ok=True, output=output, record=record, status="fallback")
    return AIOutcome(ok=True, output=output, record=record)


def _safe_model(provider: AIProvider) -> str | None:
    try:
        return provider.model
    except Exception:  # noqa: BLE001
        return None
