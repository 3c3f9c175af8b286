"""The AI pipeline for one case: call the provider, pass every output through the policy, re-route.

`enrich_case(session, case_id)`:
 1. checks the policy (kill switch off, or an external provider the policy does not allow: ai_status=off);
 2. calls the provider for classify, summarize, suggest, (contracts) extract_contract and (types with macros)
    draft_reply, recording one AICall row per call (redacting PII first when the provider is external);
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from casemgr import runtime
from casemgr.ai.models import AICall
from casemgr.ai.schemas import Classification, ContractFacts, Draft, DraftContext, Suggestion, Summary
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
from casemgr.jobs.service import batch_handler, enqueue, job_handler
from casemgr.limits import AI_ACTOR_CHARS, AI_RATIONALE_CHARS, AUDIT_REASON_CHARS, AUDIT_TEXT_CHARS

log = logging.getLogger(__name__)

JOB_KIND = "ai.enrich"
MAX_ATTEMPTS = 8
BASE_DELAY_S = 60.0
MAX_DELAY_S = 6 * 3600.0
STAGE_KINDS = ("advance_stage", "close_case", "approve_contract")  # what _stage_outputs maps a suggestion to

ProviderFactory = Callable[[], Any]


def set_provider_factory(factory: ProviderFactory | None) -> None:
    """Use another provider factory in this context (tests, `casemgr bench`); None restores the configured
    provider. A new context (casemgr.runtime) starts with the configured one."""
    runtime.current().provider_factory = factory


def get_provider() -> Any:
    """The context's AI provider (settings.ai_provider), built by the AI room's factory when it has one."""
    factory = runtime.current().provider_factory
    if factory is not None:
        return factory()
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


@dataclass
class CallOutcome:
    """One provider call, made with no database session open; stored as an AICall row afterwards."""

    capability: str
    record: dict[str, Any]
    output: Any = None
    error: str | None = None


def _call_provider(case_id: int, provider: Any, capability: str, text: str, schema: type[Any], *,
                   allowed: Any = None, context: dict[str, Any] | DraftContext | None = None) -> CallOutcome:
    """One provider call through the AI room's run_capability. Touches no database."""
    from casemgr.ai.service import run_capability

    res = run_capability(provider, capability, text, case_id=case_id, allowed=allowed, context=context)
    record = dict(res.record)
    if not res.ok:
        return CallOutcome(capability, record, error=f"{capability}: {res.error}")
    try:
        # The answer is data from outside: validate it against the schema again before anything uses it.
        return CallOutcome(capability, record, output=schema.model_validate(res.output))
    except Exception as exc:  # noqa: BLE001
        record["error"] = f"invalid output: {exc}"[:AUDIT_TEXT_CHARS]
        return CallOutcome(capability, record, error=f"{capability}: invalid output")


def _store_call(session: Session, outcome: CallOutcome) -> AICall:
    call = AICall(**outcome.record, created_at=now())
    session.add(call)
    session.flush()
    return call


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


@dataclass
class DraftSources:
    """The macros and SOP texts a batch's reply drafts read, looked up once per batch instead of once per case
    (issue 23 profile: listing the macro files and reading the SOPs for every case cost a tenth of the drain).
    A batch takes well under a second, so a macro or SOP edited meanwhile is seen by the next batch."""

    macros: Any = None  # every macro (get_macros()), or the PolicyFileError a broken file raised
    sops: dict[str, str | None] = field(default_factory=dict)

    def all_macros(self) -> Any:
        from casemgr.macros.loader import get_macros
        from casemgr.policyfile import PolicyFileError

        if self.macros is None:
            try:
                self.macros = get_macros()
            except PolicyFileError as exc:
                self.macros = exc
        if isinstance(self.macros, Exception):
            raise self.macros
        return self.macros

    def sop_text(self, link: str) -> str | None:
        if link not in self.sops:
            from casemgr.casetypes.registry import get_registry

            self.sops[link] = get_registry().sop_text(link)
        return self.sops[link]


@dataclass
class EnrichInput:
    """What the models need to know about a case, read before any model runs (no session kept)."""

    case_id: int
    version: int
    text: str
    case_type: str
    stage: str
    allowed: list[str]
    has_categories: bool
    caps: Any  # casetypes.schema.AICapabilities
    fields: dict[str, Any]
    policy: Policy
    local: bool
    draft: DraftContext | None = None  # the case facts a reply draft may use; None: no draft for this case
    # The batch's macros and SOP texts, shared by its cases (run_enrich_batch); a case on its own gets its own.
    sources: DraftSources = field(default_factory=DraftSources)


def _draft_base(session: Session, case: Case, ct: Any, sources: DraftSources) -> DraftContext | None:
    """The reply draft's facts from the database (customer, agent, macros, the stage's SOPs), or None when the
    case type has no macros to draft from (the processes of issue 22 answer no customer)."""
    from casemgr.ai.schemas import MacroText
    from casemgr.cases.models import Party
    from casemgr.policyfile import PolicyFileError
    from casemgr.users.models import User

    try:
        macros = [m for m in sources.all_macros().values() if case.case_type in m.case_types]
    except PolicyFileError:
        return None  # a broken macro file: no draft (`casemgr macros check` names the file and line)
    if not macros:
        return None
    party = session.get(Party, case.party_id) if case.party_id else None
    agent = session.get(User, case.assignee_id) if case.assignee_id else None
    sd = ct.stage(case.stage)
    sops = {t.sop: text for t in (sd.tasks if sd else []) if t.sop and (text := sources.sop_text(t.sop))}
    # Every declared field is there (None when unset), so a macro's `{% if not fields.x %}` renders.
    fields: dict[str, str | int | float | bool | None] = {f.name: None for f in ct.fields}
    fields.update({k: v for k, v in (case.fields or {}).items() if v is None or isinstance(v, str | int | float | bool)})
    return DraftContext(
        case_type=case.case_type, stage=case.stage, reference=case.reference or "", subject=case.subject or "",
        customer_name=(party.name if party and party.name else None),
        agent_name=(agent.display_name or agent.username) if agent else None, category=case.category,
        amount=case.amount, fields=fields, received=f"{case.created_at:%d %B %Y}" if case.created_at else None,
        due=f"{case.sla_due_at:%d %B %Y}" if case.sla_due_at else None, today=f"{now():%d %B %Y}",
        macros=[MacroText(name=m.name, title=m.title, stages=m.stages, reply=m.reply) for m in macros],
        sops=dict(list(sops.items())[:4]))


def prepare(session: Session, case_id: int, provider: Any, policy: Policy, sources: DraftSources | None = None
            ) -> EnrichInput | EnrichResult:
    """Read the case and decide whether to run; an EnrichResult here means "do not call any model".
    `sources`: the batch's shared macros and SOP texts (run_enrich_batch)."""
    sources = sources or DraftSources()
    case = cases.get_case(session, case_id)
    if case.status == CaseStatus.CLOSED:
        return EnrichResult(case_id, "skipped", "case is closed")
    if policy.kill_switch == "off":
        return EnrichResult(case_id, "off", "kill switch is off")
    local = is_local(provider)
    if not local and not policy.model.providers.external_allowed:
        return EnrichResult(case_id, "off", "the policy does not allow external providers")
    text = "\n\n".join(x for x in (case.subject, case.description) if x)
    if not local:
        from casemgr.ai.redact import redact

        text = redact(text, policy.model.providers.redact_pii)
    ct = cases.case_type_def(case)
    sd = ct.stage(case.stage)
    return EnrichInput(case_id=case_id, version=case.version, text=text, case_type=case.case_type, stage=case.stage,
                       allowed=list(sd.transitions) if sd else [],
                       has_categories=any(f.name == "category" and f.choices for f in ct.fields), caps=ct.ai,
                       fields=dict(case.fields or {}), policy=policy, local=local,
                       draft=_draft_base(session, case, ct, sources), sources=sources)


def call_models(inp: EnrichInput, provider: Any, classified: CallOutcome | None = None) -> list[CallOutcome]:
    """Every provider call of one run, outside any transaction: a slow model never holds the writer.

    `classified`: the classify call already made for this case as part of a batch (run_enrich_batch)."""
    out: list[CallOutcome] = []
    c = classified or _call_provider(inp.case_id, provider, "classify", inp.text, Classification)
    out.append(c)
    if c.error:
        return out
    s = _call_provider(inp.case_id, provider, "summarize", inp.text, Summary)
    out.append(s)
    if s.error:
        return out
    cls: Classification = c.output
    g = _call_provider(inp.case_id, provider, "suggest", inp.text, Suggestion, allowed=inp.allowed,
                       context={"category": cls.category.label, "urgency": cls.urgency.label,
                                "case_type": inp.case_type, "stage": inp.stage})
    out.append(g)
    if g.error:
        return out
    contract: ContractFacts | None = None
    if inp.caps.extract_contract:
        x = _call_provider(inp.case_id, provider, "extract_contract", inp.text, ContractFacts)
        out.append(x)
        contract = x.output
    ctx = _draft_context(inp, cls, s.output, contract)
    if ctx is not None and getattr(provider, "drafts_replies", False):
        out.append(_call_provider(inp.case_id, provider, "draft_reply", inp.text, Draft,
                                  context=ctx))
    return out


def _draft_context(inp: EnrichInput, cls: Classification, summary: Summary | None,
                   contract: ContractFacts | None) -> DraftContext | None:
    """The draft's facts completed with what the models found: intent, amounts and dates, next steps. None when
    no reply should be drafted: no macros for the type, or spam / phishing (a reply would confirm the address)."""
    if inp.draft is None:
        return None
    scope = cls.scope
    if scope is not None and (scope.spam or scope.phishing):
        return None
    from casemgr.ai.nextsteps import next_steps

    intent = cls.intent if inp.caps.intent else None
    steps = next_steps(intent.label, inp.text, now().date(), amount=inp.fields.get("amount")) if intent else []
    facts = summary.key_facts if summary is not None else None
    terms: dict[str, str] = {}
    if contract is not None:
        if contract.parties:
            terms["parties"] = " and ".join(contract.parties[:3])
        for key in ("expiration_date", "renewal_term", "notice_period_to_terminate_renewal", "governing_law"):
            if getattr(contract, key):
                terms[key] = str(getattr(contract, key))
    category = inp.draft.category or (cls.category.label if inp.has_categories and inp.caps.classify else None)
    found = {
        "intent": intent.label if intent else None, "intent_confidence": intent.confidence if intent else None,
        "urgency": cls.urgency.label if inp.caps.urgency == "text" else None, "category": category,
        "amounts": list(facts.amounts[:3]) if facts else [], "dates": list(facts.dates[:3]) if facts else [],
        "next_steps": [{"text": st.text, "escalate": st.escalate} for st in steps], "contract": terms}
    # Validated here, once, with the findings (the macros, already MacroText objects, are taken as they are).
    # A dump for run_capability to validate again was 4% of a drain's CPU (issue 23).
    try:
        return DraftContext.model_validate({**dict(inp.draft), **found})
    except ValidationError as exc:  # the findings come from validated models: a bug, not a reason to stop the batch
        log.warning("case %s: no reply draft, its context is invalid: %s", inp.case_id, exc)
        return None


def _urgency_for_type(inp: EnrichInput, cls: Classification, contract: ContractFacts | None) -> Any:
    """The urgency this case type lets the AI state (issue 17: per-type capabilities), or None."""
    if inp.caps.urgency == "text":
        return cls.urgency
    if inp.caps.urgency == "contract_dates":
        from types import SimpleNamespace

        from casemgr.ai.deadline_urgency import contract_urgency
        from casemgr.sla.calendar import get_calendar
        from casemgr.sla.renewals import compute

        facts = contract.model_dump(mode="json") if contract is not None else {}
        # compute() reads only .fields and .contract: the extracted facts stand in for the stored ones.
        renewal = compute(SimpleNamespace(fields=inp.fields, contract=facts),  # type: ignore[arg-type]
                          now().astimezone(get_calendar().tz).date())
        return contract_urgency(renewal, now().astimezone(get_calendar().tz).date(),
                                horizon_days=inp.caps.urgency_horizon_days, critical_days=inp.caps.critical_within_days)
    return None


def enrich_case(session: Session, case_id: int, *, provider: Any | None = None, policy: Policy | None = None,
                attempt: int = 0) -> EnrichResult:
    """Run the AI pipeline for one case inside the caller's transaction (inline use, tests, the CLI).

    The worker does not use this: it reads, calls the models with no transaction open, then applies in a
    short write transaction (run_enrich_job). Never raises for a provider failure: the case is marked
    unavailable and a retry is enqueued. StaleVersion does propagate, so a job is retried.
    """
    policy = policy or active_policy(session)
    try:
        provider = provider or get_provider()
    except Exception as exc:  # noqa: BLE001
        case = cases.get_case(session, case_id)
        return _unavailable(session, case, f"no provider: {exc}", attempt)
    prep = prepare(session, case_id, provider, policy)
    calls = call_models(prep, provider) if isinstance(prep, EnrichInput) else []
    return apply_results(session, prep, calls, provider, attempt)


@dataclass
class BuiltOutputs:
    """What one run proposes: the governed outputs, and the model answers the case view is made from."""

    outputs: list[AIOutput]
    cls: Classification
    urgency: Any
    suggestion: Suggestion
    model: str


def build_outputs(inp: EnrichInput, case: Any, stored: dict[str, tuple[CallOutcome, Any]], provider: Any
                  ) -> BuiltOutputs:
    """Turn the calls' answers into AIOutputs (pure). `stored` maps capability -> (outcome, call row); a call
    row is an AICall or a plain draft with the same attributes (the batch writer, enrich_plan)."""
    c_out, c_call = stored["classify"]
    s_out, s_call = stored["summarize"]
    g_out, g_call = stored["suggest"]
    x = stored.get("extract_contract")
    classification: Classification = c_out.output
    summary: Summary = s_out.output
    suggestion: Suggestion = g_out.output
    contract: ContractFacts | None = x[0].output if x else None
    x_call = x[1] if x else None
    if contract is not None:
        # Contracts get a structured summary from their extracted fields (parties, kind, term, renewal, law, risks).
        from casemgr.ai.contract_summary import contract_summary

        summary = contract_summary(contract, amount=case.amount)
    has_categories = inp.has_categories
    model = str(getattr(provider, "model", None) or getattr(provider, "name", "ai"))

    def base(call: Any) -> dict[str, Any]:
        # Model and prompt version together: an LLM answer depends on both.
        version = call.model_version or model
        if call.prompt_version:
            version = f"{version}|{call.prompt_version}"
        return {"model_version": version[:AI_ACTOR_CHARS], "provider": call.provider, "ai_call_id": call.id}

    outputs: list[AIOutput] = []
    cls = classification
    urgency = _urgency_for_type(inp, cls, contract)
    fields_out: list[tuple[str, Any]] = [("sentiment", cls.sentiment)]
    if has_categories and inp.caps.classify:
        fields_out.insert(0, ("category", cls.category))
    if urgency is not None:
        fields_out.insert(1 if len(fields_out) > 1 else 0, ("urgency", urgency))
    for fname, scored in fields_out:
        outputs.append(AIOutput(kind="classify", field=fname, value={fname: scored.label},
                                confidence=float(scored.confidence), rationale="; ".join(scored.evidence)[:AI_RATIONALE_CHARS],
                                **base(c_call)))
    if urgency is not None and urgency.label in Urgency.values():
        # Priority follows urgency only through set_priority's own policy entry (threshold, owner), never
        # around it: the rules that map urgency to priority are bound the same way (cases.routing gate).
        outputs.append(AIOutput(kind="set_priority", value={"priority": Urgency(urgency.label).priority.value},
                                confidence=float(urgency.confidence),
                                rationale=f"urgency {urgency.label}: {'; '.join(urgency.evidence)}"[:AI_RATIONALE_CHARS],
                                **base(c_call)))
    outputs.append(AIOutput(kind="summarize", value={"summary": summary.summary,
                                                     "key_facts": summary.key_facts.model_dump(mode="json")},
                            confidence=None, **base(s_call)))
    outputs.extend(_stage_outputs(case, suggestion, base(g_call)))
    d = stored.get("draft_reply")
    if d is not None and d[0].output is not None:
        draft: Draft = d[0].output
        # A suggestion for the agent (the shipped policy cannot make it more): the case page puts it in the
        # reply box; sending records how much the agent changed it (governance.draft_outcome).
        outputs.append(AIOutput(kind="draft_reply", value={"text": draft.text, "evidence": draft.evidence,
                                                           "sources": draft.sources},
                                confidence=float(draft.confidence),
                                rationale="; ".join(draft.evidence)[:AI_RATIONALE_CHARS], **base(d[1])))
    if contract is not None and x_call is not None:
        confs = [c.confidence for c in contract.clauses.values() if c.confidence is not None]
        outputs.append(AIOutput(kind="extract_contract", value=contract.model_dump(mode="json"),
                                confidence=round(sum(confs) / len(confs), 4) if confs else None, **base(x_call)))
    return BuiltOutputs(outputs=outputs, cls=cls, urgency=urgency, suggestion=suggestion, model=model)


def apply_results(session: Session, prep: EnrichInput | EnrichResult, calls: list[CallOutcome], provider: Any,
                  attempt: int = 0) -> EnrichResult:
    """Store the calls and pass every output through the policy, in the caller's (short) write transaction."""
    if isinstance(prep, EnrichResult):
        if prep.status == "off":
            case = cases.get_case(session, prep.case_id)
            actor = "system:ai-policy"
            _set_status(session, case, "off", "kill switch off" if "kill" in prep.reason else
                        "external provider not allowed by policy", actor)
        return prep
    inp = prep
    case_id = inp.case_id
    policy = inp.policy
    case = cases.get_case(session, case_id)
    if case.status == CaseStatus.CLOSED:
        return EnrichResult(case_id, "skipped", "case is closed")
    stored = {c.capability: (c, _store_call(session, c)) for c in calls}
    # A draft that failed is only a missing draft (the call is recorded); every other failure makes AI unavailable.
    failed = next((c for c in calls if c.error and c.capability != "draft_reply"), None)
    if failed is not None:
        return _unavailable(session, case, failed.error or "provider failed", attempt, calls=len(calls))
    built = build_outputs(inp, case, stored, provider)
    outputs, cls, urgency, suggestion, model = built.outputs, built.cls, built.urgency, built.suggestion, built.model
    has_categories = inp.has_categories
    run_id = uuid.uuid4().hex[:16]

    # Every decision of a run sees the same facts: the case as it was, with the AI's category as context for
    # per-category thresholds when the case has none yet.
    facts = CaseFacts.from_case(case)
    if has_categories and facts.category is None:
        facts = replace(facts, category=cls.category.label)
    result = EnrichResult(case_id, "ok", calls=len(calls))
    applied_facts: dict[str, Any] = {}
    for out in outputs:
        row = record_decision(session, case, out, policy=policy, facts=facts, run_id=run_id, route=False)
        result.decisions.append(int(row.id or 0))
        result.outcomes[row.outcome] = result.outcomes.get(row.outcome, 0) + 1
        if out.kind in STAGE_KINDS and row.outcome == "rejected":
            # A next step the policy rejected is never shown as a suggestion, only in the decision history.
            suggestion = Suggestion(action=None, rationale=f"rejected by the policy: {row.reason}"[:AI_RATIONALE_CHARS],
                                    confidence=0.0)
        if out.kind == "classify" and row.outcome == "applied" and out.field:
            # Provenance of AI-set facts: rules that act on them are bound by the policy (cases.routing).
            applied_facts[out.field] = {"value": out.value.get(out.field), "confidence": out.confidence,
                                        "decision_id": row.id}
        session.refresh(case)
    view = _view(inp, cls, urgency, suggestion, model, provider, policy, run_id, applied_facts, case)
    actor = f"ai:{model}"[:AI_ACTOR_CHARS]
    if case.status == CaseStatus.CLOSED:  # an applied decision closed it; nothing more to route
        return result
    case = _set_status(session, case, "ok", "enriched", actor, extra=view)
    from casemgr.cases.routing import route_case

    route_case(session, case, actor=actor, reason="ai facts")
    return result


def _view(inp: EnrichInput, cls: Classification, urgency: Any, suggestion: Suggestion, model: str, provider: Any,
          policy: Policy, run_id: str, applied_facts: dict[str, Any], case: Case) -> dict[str, Any]:
    """What the case page and the reviewer see of this run: every field with confidence and evidence."""
    from casemgr.ai.nextsteps import next_steps

    has_categories = inp.has_categories and inp.caps.classify
    intent = cls.intent if inp.caps.intent else None
    # A step links its SOP only when that SOP is in force, looked up once per batch (a stat per case was 1.5% of
    # an enrichment batch's CPU, issue 23): the same look-up, and the same published version, as the draft's SOPs.
    steps = next_steps(intent.label if intent else None, inp.text, now().date(), amount=(case.fields or {}).get("amount"),
                       sop_exists=lambda p: inp.sources.sop_text(p) is not None) if inp.caps.intent else []
    return {
        "classification": {
            "category": cls.category.label if has_categories else None,
            "confidence": cls.category.confidence if has_categories else None,
            "category_evidence": cls.category.evidence if has_categories else [],
            "urgency": urgency.label if urgency is not None else None,
            "urgency_confidence": urgency.confidence if urgency is not None else None,
            "urgency_evidence": urgency.evidence if urgency is not None else [],
            "sentiment": cls.sentiment.label, "sentiment_confidence": cls.sentiment.confidence,
            "intent": intent.label if intent else None,
            "intent_confidence": intent.confidence if intent else None,
            "intent_evidence": intent.evidence if intent else [],
            "scope": cls.scope.model_dump(mode="json") if cls.scope else None,
        },
        "applied_facts": applied_facts,
        "next_steps": [s.as_dict() for s in steps],
        "suggestion": suggestion.model_dump(mode="json"),
        "model": model, "provider": getattr(provider, "name", None), "policy_version": policy.version,
        "run_id": run_id, "enriched_at": now().isoformat(),
    }


def _unavailable(session: Session, case: Case, reason: str, attempt: int, calls: int = 0) -> EnrichResult:
    """Provider failed: mark the case, keep its rules routing, and retry later with backoff."""
    log.warning("AI unavailable for case %s: %s", case.id, reason)
    case = _set_status(session, case, "unavailable", reason[:AUDIT_REASON_CHARS], "system:ai",
                        extra={"last_error": reason[:AUDIT_REASON_CHARS]})
    from casemgr.cases.routing import route_case

    route_case(session, case, actor="system:ai", reason="ai unavailable; rules only")
    job = schedule_retry(session, case.id or 0, attempt)
    return EnrichResult(case.id or 0, "unavailable", reason, retry_job_id=job.id if job else None, calls=calls)


@job_handler(JOB_KIND, own_transactions=True)
def run_enrich_job(session: Session, job: Job) -> None:
    """Worker entry: read the case, end the read transaction, call the models, then apply in a short write.

    No transaction is open while a provider works (issue 17: a slow model held SQLite's writer for 25 s).
    A case already enriched is left alone (idempotent; checked again inside the write).
    """
    from casemgr.db import write_session

    case_id = int(job.payload.get("case_id", 0))
    attempt = int(job.payload.get("attempt", 0))
    force = bool(job.payload.get("force"))
    case = session.get(Case, case_id)
    if case is None or (case.ai_status == "ok" and not force):
        return
    try:
        provider = get_provider()
    except Exception as exc:  # noqa: BLE001
        session.rollback()
        with write_session() as ws:
            _unavailable(ws, cases.get_case(ws, case_id), f"no provider: {exc}", attempt)
        return
    policy = active_policy(session)
    prep = prepare(session, case_id, provider, policy)
    session.rollback()  # end the read snapshot before any model runs
    calls = call_models(prep, provider) if isinstance(prep, EnrichInput) else []
    with write_session() as ws:
        current = ws.get(Case, case_id)
        if current is None or (current.ai_status == "ok" and not force):
            return
        apply_results(ws, prep, calls, provider, attempt)


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


ENRICH_BATCH_SIZE = 64


def _classify_batch(preps: list[EnrichInput], provider: Any) -> dict[int, CallOutcome]:
    """One batched classify call for many cases (the local models do 500-1,500 texts/s batched)."""
    import time

    from casemgr.ai.service import call_record, input_hash

    batch = getattr(provider, "classify_batch", None)
    if batch is None or not preps:
        return {}
    t0 = time.perf_counter()
    try:
        results = batch([p.text for p in preps])
    except Exception:  # noqa: BLE001 - fall back to one call per case, which records each failure
        log.exception("batched classify failed; classifying one by one")
        return {}
    per_ms = (time.perf_counter() - t0) * 1000 / len(preps)
    model_version, prompt_version = provider.version("classify")
    # A remote answer is data from outside: validated again before anything uses it. The local models' answers
    # are Classification objects built by this code (validating them again was 2% of a batch's CPU).
    trusted = is_local(provider)
    out: dict[int, CallOutcome] = {}
    for prep, res in zip(preps, results, strict=True):
        output = res.model_dump(mode="json")
        record = call_record(capability="classify", provider=provider.name, model=provider.model,
                             model_version=model_version, prompt_version=prompt_version,
                             input_sha256=input_hash("classify", prep.text), output=output, latency_ms=per_ms,
                             case_id=prep.case_id)
        checked = res if trusted and isinstance(res, Classification) else Classification.model_validate(output)
        out[prep.case_id] = CallOutcome("classify", record, output=checked)
    return out


def _load_people(session: Session, loaded: Sequence[Case]) -> list[Any]:
    """The parties and assignees of a batch's cases in two queries; returned so the caller keeps them alive in
    the identity map (it holds objects weakly) while the cases are prepared."""
    from sqlalchemy import select
    from sqlmodel import col

    from casemgr.cases.models import Party
    from casemgr.users.models import User

    out: list[Any] = []
    for model, ids in ((Party, {c.party_id for c in loaded if c.party_id}),
                       (User, {c.assignee_id for c in loaded if c.assignee_id})):
        if ids:
            out.extend(session.execute(select(model).where(col(model.id).in_(sorted(ids)))).scalars().all())
    return out


@batch_handler(JOB_KIND, ENRICH_BATCH_SIZE)
def run_enrich_batch(job_ids: list[int], worker_id: str) -> dict[str, int]:
    """Enrich up to ENRICH_BATCH_SIZE cases: read them, classify them as one batch and call the other
    capabilities with no transaction open, plan each run's effect on a copy of its case (enrich_plan), then
    store every decision, audit event and re-route with a few statements per write transaction, in parts sized so
    that each holds the write lock about STORE_BUDGET_S (_store_in_parts; one part on a quiet host).
    A case that cannot be planned, or changed since it was read, is applied by apply_results in a savepoint of
    its part's transaction, so one stale case does not undo the others. The policy choke point and the per-call
    AI records stay per case (issue 23)."""
    from sqlalchemy import select
    from sqlmodel import col

    from casemgr.db import read_session
    from casemgr.governance import enrich_plan
    from casemgr.jobs.service import record_failure

    outcomes: dict[str, int] = {}

    def count(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    work: list[tuple[Job, EnrichInput | EnrichResult]] = []
    snaps: dict[int, Any] = {}
    skip: list[int] = []
    with read_session() as rs:
        claimed = list(rs.execute(select(Job).where(col(Job.id).in_(job_ids), col(Job.locked_by) == worker_id)).scalars())
        try:
            provider = get_provider()
        except Exception as exc:  # noqa: BLE001
            for job in claimed:
                count(record_failure(job.id or 0, worker_id, f"no provider: {exc}"))
            return outcomes
        policy = active_policy(rs)
        # One query for the batch's cases: rs.get below finds them in the identity map (which holds them only
        # weakly, hence the list).
        wanted = [int(job.payload.get("case_id", 0)) for job in claimed]
        loaded = rs.execute(select(Case).where(col(Case.id).in_(wanted))).scalars().all()
        # Their customers and agents too, for the reply drafts (_draft_base's session.get hits the identity map).
        people = _load_people(rs, loaded)
        sources = DraftSources()
        for job in claimed:
            case = rs.get(Case, int(job.payload.get("case_id", 0)))
            if case is None or (case.ai_status == "ok" and not job.payload.get("force")):
                skip.append(job.id or 0)
                continue
            prep = prepare(rs, case.id or 0, provider, policy, sources)
            if isinstance(prep, EnrichInput):
                snaps[job.id or 0] = enrich_plan.snapshot(case)
            work.append((job, prep))
            rs.expunge(job)
        open_tasks = enrich_plan.open_task_names(rs, [s.id for s in snaps.values()])
        del loaded, people
    preps = [p for _, p in work if isinstance(p, EnrichInput)]
    classified = _classify_batch(preps, provider) if is_local(provider) else {}
    calls = {job.id or 0: (call_models(p, provider, classified.get(p.case_id)) if isinstance(p, EnrichInput) else [])
             for job, p in work}
    planned: dict[int, Any] = {}
    for job, prep in work:
        jid = job.id or 0
        if jid in snaps and isinstance(prep, EnrichInput):
            try:
                p = enrich_plan.plan(prep, snaps[jid], open_tasks[prep.case_id], calls[jid], provider)
            except Exception:  # noqa: BLE001 - the ordinary writer stores this case
                log.exception("planning the AI results of case %s failed; applying them one by one", prep.case_id)
                p = None
            if p is not None:
                planned[jid] = p
    done, failed = _store_in_parts(work, skip, calls, planned, provider, worker_id)
    for outcome in done:
        count(outcome)
    for jid, error in failed:
        count(record_failure(jid, worker_id, error))
    return outcomes


# Wall time one store transaction of a batch aims at (issue 23: no write transaction over 50 ms at 1M cases, and
# SQLite's single writer is shared with intake). A batch is stored in parts: the first of STORE_FIRST_PART cases,
# each next one sized from the time per case the part before held the write lock, so a loaded host stores
# smaller parts instead of holding the lock longer, down to STORE_MIN_PART: each part pays ~13 statements and a
# commit (fsync) of its own, so on a host starved of CPU smaller parts would cost more drain than they save lock
# time. Each case's calls, decisions, audit events and re-route are in one part: atomic per case, as before.
STORE_BUDGET_S = 0.03
STORE_FIRST_PART = 16
STORE_MIN_PART = 8


def _store_in_parts(work: list[tuple[Job, EnrichInput | EnrichResult]], skip: list[int],
                    calls: dict[int, list[CallOutcome]], planned: dict[int, Any], provider: Any, worker_id: str
                    ) -> tuple[list[str], list[tuple[int, str]]]:
    """Store a batch's results in write transactions of about STORE_BUDGET_S each: (outcomes, failed jobs)."""
    done: list[str] = []
    failed: list[tuple[int, str]] = []
    size, start = STORE_FIRST_PART, 0
    while True:
        part = work[start:start + size]
        jids = {job.id or 0 for job, _ in part}
        part_planned = {jid: p for jid, p in planned.items() if jid in jids}
        part_skip = skip if start == 0 else []
        try:
            d, f, held_s = _store_batch(part, part_skip, calls, part_planned, provider, worker_id)
        except Exception:  # noqa: BLE001 - e.g. an integrity error in the bulk insert: store case by case instead
            if not part_planned:
                raise
            log.exception("storing %d AI runs in one statement set failed; storing them case by case", len(part))
            d, f, held_s = _store_batch(part, part_skip, calls, {}, provider, worker_id)
        done.extend(d)
        failed.extend(f)
        start += len(part)
        if start >= len(work):
            return done, failed
        per_case = held_s / max(len(part), 1)
        fit = int(STORE_BUDGET_S / per_case) if per_case > 0 else ENRICH_BATCH_SIZE
        size = max(STORE_MIN_PART, min(ENRICH_BATCH_SIZE, fit))


def _store_batch(work: list[tuple[Job, EnrichInput | EnrichResult]], skip: list[int],
                 calls: dict[int, list[CallOutcome]], planned: dict[int, Any], provider: Any, worker_id: str
                 ) -> tuple[list[str], list[tuple[int, str]], float]:
    """One write transaction for (a part of) a batch: (outcome per job, jobs that failed with their error,
    seconds the transaction held the write lock, from BEGIN to the end of the commit)."""
    import time

    from sqlalchemy import select, update
    from sqlmodel import col

    from casemgr.db import write_session
    from casemgr.governance import enrich_plan
    from casemgr.jobs.service import mark_done

    done: list[str] = []
    failed: list[tuple[int, str]] = []
    with write_session() as ws:
        ws.connection()  # BEGIN (IMMEDIATE on SQLite): the lock is held from here
        began = time.perf_counter()
        for jid in skip:
            done.append("done" if mark_done(ws, jid, worker_id) else "lost")
        bulk: list[Any] = []
        bulk_jobs: list[int] = []
        if planned:
            q = select(col(Job.id)).where(col(Job.id).in_(list(planned)), col(Job.locked_by) == worker_id,
                                          col(Job.status) == "running")
            if ws.get_bind().dialect.name == "postgresql":
                q = q.with_for_update()
            held = set(ws.execute(q).scalars())
            versions = enrich_plan.current_versions(ws, [p.case_id for p in planned.values()])
            for jid, p in planned.items():
                if jid in held and versions.get(p.case_id) == p.from_version:
                    bulk.append(p)
                    bulk_jobs.append(jid)
        for job, prep in work:
            jid = job.id or 0
            if jid in bulk_jobs:
                continue
            try:
                with ws.begin_nested():
                    if not mark_done(ws, jid, worker_id):
                        done.append("lost")  # another worker holds it now: leave the case to it
                        continue
                    current = ws.get(Case, int(job.payload.get("case_id", 0)))
                    if current is not None and not (current.ai_status == "ok" and not job.payload.get("force")):
                        apply_results(ws, prep, calls[jid], provider, int(job.payload.get("attempt", 0)))
                done.append("done")
            except Exception as exc:  # noqa: BLE001 - this case is retried; the batch's other cases commit
                failed.append((jid, f"{type(exc).__name__}: {exc}"))
        if bulk:
            enrich_plan.store(ws, bulk)
            ws.execute(update(Job).where(col(Job.id).in_(bulk_jobs))
                       .values(status="done", finished_at=now(), locked_until=None, last_error=None)
                       .execution_options(synchronize_session=False))
            done.extend("done" for _ in bulk_jobs)
    return done, failed, time.perf_counter() - began
