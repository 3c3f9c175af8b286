"""The AI pipeline for one case: call the provider, pass every output through the policy, re-route.

`enrich_case(session, case_id)`:
 1. checks the policy (kill switch off, or an external provider the policy does not allow: ai_status=off);
 2. calls the provider for classify, summarize, suggest and (contracts) extract_contract, recording one
    AICall row per call (redacting PII first when the provider is external);
 3. on any provider failure marks the case `ai_status=unavailable`, keeps the rules' routing, and enqueues an
    `ai.enrich` retry with exponential backoff;
 4. otherwise turns the answers into AIOutputs and records each through governance.service.record_decision
    (the only path that applies AI output), stores the AI's view on `case.ai` (classification, suggestion;
    the summary and contract facts only when the policy applied them), sets ai_status=ok, and re-runs the
    rules so the re-evaluation is on the audit trail.

Registered as the worker job `ai.enrich`; intake calls `enrich_inline_or_enqueue`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from casemgr.ai.models import AICall
from casemgr.ai.schemas import Classification, ContractFacts, Suggestion, Summary
from casemgr.cases import service as cases
from casemgr.cases.change import change
from casemgr.cases.enums import CaseStatus, Urgency
from casemgr.cases.models import Case
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.governance import kinds
from casemgr.governance.decide import AIOutput, CaseFacts
from casemgr.governance.policy import Policy, active_policy
from casemgr.governance.service import record_decision
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler
from casemgr.limits import AI_ACTOR_CHARS, AI_RATIONALE_CHARS, AUDIT_REASON_CHARS, AUDIT_TEXT_CHARS

log = logging.getLogger(__name__)

JOB_KIND = "ai.enrich"
MAX_ATTEMPTS = 8
BASE_DELAY_S = 60.0
MAX_DELAY_S = 6 * 3600.0

ProviderFactory = Callable[[], Any]
_provider_factory: ProviderFactory | None = None


def set_provider_factory(factory: ProviderFactory | None) -> None:
    """Use another provider factory (tests, `casemgr bench`); None restores the configured provider."""
    global _provider_factory
    _provider_factory = factory


def get_provider() -> Any:
    """The configured AI provider (settings.ai_provider), built by the AI room's factory when it has one."""
    if _provider_factory is not None:
        return _provider_factory()
    try:  # the AI room owns provider construction; use its factory when present
        from casemgr.ai.providers import get_provider as ai_get_provider  # type: ignore[attr-defined]

        return ai_get_provider()
    except ImportError:
        pass
    name = get_settings().ai_provider
    if name == "local":
        from casemgr.ai.providers.local import LocalProvider

        return LocalProvider()
    from casemgr.ai.providers.base import AIUnavailable

    raise AIUnavailable(f"AI provider {name!r} is not available in this build")


def is_local(provider: Any) -> bool:
    return getattr(provider, "name", "") == "local"


@dataclass
class EnrichResult:
    case_id: int
    status: str  # ok | unavailable | off | skipped
    reason: str = ""
    decisions: list[int] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    retry_job_id: int | None = None
    calls: int = 0


class _CallFailed(Exception):
    pass


def _call(session: Session, case_id: int, provider: Any, capability: str, text: str, schema: type[Any], *,
          allowed: Any = None, context: dict[str, Any] | None = None) -> tuple[Any, AICall]:
    """One provider call through the AI room's run_capability; the AICall row is stored either way."""
    from casemgr.ai.service import run_capability

    res = run_capability(provider, capability, text, case_id=case_id, allowed=allowed, context=context)
    call = AICall(**res.record, created_at=now())
    session.add(call)
    session.flush()
    if not res.ok:
        raise _CallFailed(f"{capability}: {res.error}")
    try:
        # The answer is data from outside: validate it against the schema again before anything uses it.
        return schema.model_validate(res.output), call
    except Exception as exc:  # noqa: BLE001
        call.error = f"invalid output: {exc}"[:AUDIT_TEXT_CHARS]
        session.add(call)
        session.flush()
        raise _CallFailed(f"{capability}: invalid output") from exc


def _set_status(session: Session, case: Case, status: str, reason: str, actor: str, extra: dict[str, Any] | None = None
                ) -> Case:
    with change(session, case.id or 0, case.version, actor, "ai.status") as ch:
        case = ch.case
        before = {"ai_status": case.ai_status}
        case.ai_status = status
        if extra is not None:
            case.ai = {**(case.ai or {}), **extra}
        ch.audit(before=before, after={"ai_status": status, "reason": reason, "version": case.version})
    return case


def schedule_retry(session: Session, case_id: int, attempt: int) -> Job | None:
    """Enqueue the next `ai.enrich` attempt with exponential backoff (1 min, 2, 4, ... capped at 6 h)."""
    nxt = attempt + 1
    if nxt >= MAX_ATTEMPTS:
        return None
    delay = min(MAX_DELAY_S, BASE_DELAY_S * (2 ** attempt))
    return enqueue(session, JOB_KIND, {"case_id": case_id, "attempt": nxt}, run_at=now() + timedelta(seconds=delay),
                   idempotency_key=f"{JOB_KIND}:{case_id}:{nxt}")


def _stage_outputs(case: Case, suggestion: Any, base: dict[str, Any]) -> list[AIOutput]:
    """Map a suggested next step (a stage the case may move to) onto a governed decision kind."""
    action = getattr(suggestion, "action", None)
    if not action:
        return []
    ct = cases.case_type_def(case)
    sd = ct.stage(action)
    if sd is None:
        return []
    # The stage-moving kinds say which of them a move is, the most specific asked first.
    kind = next((k.name for k in kinds.stage_moves() if k.proposes(case, action, sd.final)), None)
    if kind is None:
        return []
    return [AIOutput(kind=kind, value={"to_stage": action}, confidence=float(suggestion.confidence),
                     rationale=str(suggestion.rationale or "")[:AI_RATIONALE_CHARS], **base)]


def enrich_case(session: Session, case_id: int, *, provider: Any | None = None, policy: Policy | None = None,
                attempt: int = 0) -> EnrichResult:
    """Run the AI pipeline for one case inside the caller's transaction (see the module docstring).

    Never raises for a provider failure: the case is marked unavailable and a retry is enqueued.
    StaleVersion (someone changed the case meanwhile) does propagate, so a job is retried.
    """
    case = cases.get_case(session, case_id)
    if case.status == CaseStatus.CLOSED:
        return EnrichResult(case_id, "skipped", "case is closed")
    policy = policy or active_policy(session)
    if policy.kill_switch == "off":
        _set_status(session, case, "off", "kill switch off", "system:ai-policy")
        return EnrichResult(case_id, "off", "kill switch is off")
    try:
        provider = provider or get_provider()
    except Exception as exc:  # noqa: BLE001
        return _unavailable(session, case, f"no provider: {exc}", attempt)
    local = is_local(provider)
    if not local and not policy.model.providers.external_allowed:
        _set_status(session, case, "off", "external provider not allowed by policy", "system:ai-policy")
        return EnrichResult(case_id, "off", "the policy does not allow external providers")
    text = "\n\n".join(x for x in (case.subject, case.description) if x)
    if not local:
        from casemgr.ai.redact import redact

        text = redact(text, policy.model.providers.redact_pii)
    ct = cases.case_type_def(case)
    has_categories = any(f.name == "category" and f.choices for f in ct.fields)
    calls: list[AICall] = []
    try:
        classification, c_call = _call(session, case_id, provider, "classify", text, Classification)
        calls.append(c_call)
        summary, s_call = _call(session, case_id, provider, "summarize", text, Summary)
        calls.append(s_call)
        sd = ct.stage(case.stage)
        allowed = list(sd.transitions) if sd else []
        suggestion, g_call = _call(session, case_id, provider, "suggest", text, Suggestion, allowed=allowed,
                                   context={"category": classification.category.label,
                                            "urgency": classification.urgency.label, "case_type": case.case_type,
                                            "stage": case.stage})
        calls.append(g_call)
        contract = None
        x_call = None
        if case.case_type == "contract":
            contract, x_call = _call(session, case_id, provider, "extract_contract", text, ContractFacts)
            calls.append(x_call)
    except _CallFailed as exc:
        return _unavailable(session, case, str(exc), attempt, calls=len(calls) + 1)

    model = str(getattr(provider, "model", None) or getattr(provider, "name", "ai"))
    run_id = uuid.uuid4().hex[:16]

    def base(call: AICall) -> dict[str, Any]:
        # Model and prompt version together: an LLM answer depends on both.
        version = call.model_version or model
        if call.prompt_version:
            version = f"{version}|{call.prompt_version}"
        return {"model_version": version[:AI_ACTOR_CHARS], "provider": call.provider, "ai_call_id": call.id}

    outputs: list[AIOutput] = []
    cls = classification
    for fname, scored in (("category", cls.category), ("urgency", cls.urgency), ("sentiment", cls.sentiment)):
        if fname == "category" and not has_categories:
            continue
        outputs.append(AIOutput(kind="classify", field=fname, value={fname: scored.label},
                                confidence=float(scored.confidence), **base(c_call)))
    if cls.urgency.label in Urgency.values():
        outputs.append(AIOutput(kind="set_priority", value={"priority": Urgency(cls.urgency.label).priority.value},
                                confidence=float(cls.urgency.confidence), rationale=f"urgency {cls.urgency.label}",
                                **base(c_call)))
    outputs.append(AIOutput(kind="summarize", value={"summary": summary.summary,
                                                     "key_facts": summary.key_facts.model_dump(mode="json")},
                            confidence=None, **base(s_call)))
    outputs.extend(_stage_outputs(case, suggestion, base(g_call)))
    if contract is not None and x_call is not None:
        confs = [c.confidence for c in contract.clauses.values() if c.confidence is not None]
        outputs.append(AIOutput(kind="extract_contract", value=contract.model_dump(mode="json"),
                                confidence=round(sum(confs) / len(confs), 4) if confs else None, **base(x_call)))

    # Every decision of a run sees the same facts: the case as it was, with the AI's category as context for
    # per-category thresholds when the case has none yet.
    facts = CaseFacts.from_case(case)
    if has_categories and facts.category is None:
        facts = replace(facts, category=cls.category.label)
    result = EnrichResult(case_id, "ok", calls=len(calls))
    for out in outputs:
        row = record_decision(session, case, out, policy=policy, facts=facts, run_id=run_id, route=False)
        result.decisions.append(int(row.id or 0))
        result.outcomes[row.outcome] = result.outcomes.get(row.outcome, 0) + 1
        session.refresh(case)
    view = {
        "classification": {
            "category": cls.category.label if has_categories else None,
            "confidence": cls.category.confidence if has_categories else None,
            "urgency": cls.urgency.label, "urgency_confidence": cls.urgency.confidence,
            "sentiment": cls.sentiment.label, "sentiment_confidence": cls.sentiment.confidence,
        },
        "suggestion": suggestion.model_dump(mode="json"),
        "model": model, "provider": getattr(provider, "name", None), "policy_version": policy.version,
        "run_id": run_id, "enriched_at": now().isoformat(),
    }
    actor = f"ai:{model}"[:AI_ACTOR_CHARS]
    if case.status == CaseStatus.CLOSED:  # an applied decision closed it; nothing more to route
        return result
    case = _set_status(session, case, "ok", "enriched", actor, extra=view)
    from casemgr.cases.routing import route_case

    route_case(session, case, actor=actor, reason="ai facts")
    return result


def _unavailable(session: Session, case: Case, reason: str, attempt: int, calls: int = 0) -> EnrichResult:
    """Provider failed: mark the case, keep its rules routing, and retry later with backoff."""
    log.warning("AI unavailable for case %s: %s", case.id, reason)
    case = _set_status(session, case, "unavailable", reason[:AUDIT_REASON_CHARS], "system:ai",
                        extra={"last_error": reason[:AUDIT_REASON_CHARS]})
    from casemgr.cases.routing import route_case

    route_case(session, case, actor="system:ai", reason="ai unavailable; rules only")
    job = schedule_retry(session, case.id or 0, attempt)
    return EnrichResult(case.id or 0, "unavailable", reason, retry_job_id=job.id if job else None, calls=calls)


@job_handler(JOB_KIND)
def run_enrich_job(session: Session, job: Job) -> None:
    """Worker entry: enrich the case named in the payload; a case already enriched is left alone (idempotent)."""
    case_id = int(job.payload.get("case_id", 0))
    case = session.get(Case, case_id)
    if case is None or (case.ai_status == "ok" and not job.payload.get("force")):
        return
    enrich_case(session, case_id, attempt=int(job.payload.get("attempt", 0)))


def enrich_inline_or_enqueue(session: Session, case: Case) -> EnrichResult | Job:
    """Called by intake right after a case is created, in the same transaction.

    Runs the pipeline inline when settings.ai_inline is on and the provider is local (fast, offline);
    otherwise, or if inline enrichment hits an unexpected error, enqueues an `ai.enrich` job. Intake never
    fails because of AI: an inline error is rolled back to a savepoint and left to the worker.
    """
    settings = get_settings()
    from casemgr.db import writers_in_flight

    # Inline only when this is the only write in flight here: under concurrent intake the AI work (tens of ms of
    # CPU) would hold SQLite's write lock and queue every other request behind it; the worker does it instead.
    if settings.ai_inline and writers_in_flight() <= 1:
        try:
            provider = get_provider()
        except Exception:  # noqa: BLE001
            provider = None
        if provider is not None and is_local(provider):
            try:
                with session.begin_nested():
                    return enrich_case(session, case.id or 0, provider=provider)
            except Exception:  # noqa: BLE001 - intake must not fail because of AI
                log.exception("inline AI enrichment failed for case %s; queued for the worker", case.id)
                session.refresh(case)
    return enqueue(session, JOB_KIND, {"case_id": case.id, "attempt": 0}, idempotency_key=f"{JOB_KIND}:{case.id}:0")
