"""The default provider: everything runs on this machine from shipped artefacts, no network."""

from __future__ import annotations

from typing import Any

from casemgr.ai import classifier, contracts, signals
from casemgr.ai.contract_fields import extract_fields
from casemgr.ai.evidence import best_sentence, cue_words
from casemgr.ai.providers.base import AIProvider
from casemgr.ai.schemas import (
    CLAUSES,
    Classification,
    Clause,
    ContractFacts,
    Draft,
    DraftContext,
    Scope,
    Scored,
    Suggestion,
    Summary,
)
from casemgr.ai.scope import assess
from casemgr.ai.suggest import AllowedActions, suggest_local
from casemgr.ai.summarize import summarize
from casemgr.ai.targets import TARGETS, TargetName

# Caps on confidence when there is nothing to go on: below every threshold the policy may set for auto.
NO_EVIDENCE_CONFIDENCE = 0.45
OUT_OF_SCOPE_CONFIDENCE = 0.2


class LocalProvider(AIProvider):
    name = "local"
    drafts_replies = True

    def __init__(self, category_model_path: str | None = None, contract_model_path: str | None = None):
        self._category_path = category_model_path
        self._contract_path = contract_model_path

    @property
    def category_model(self) -> classifier.CategoryModel:
        if self._category_path:
            return classifier.default_model(self._category_path)
        # The model a change request put in force (issue 21: governed learning), else the bundled one.
        from casemgr.learning.model_doc import active_category_path

        return classifier.default_model(active_category_path())

    @property
    def contract_model(self) -> contracts.ClauseModel:
        return contracts.default_model(self._contract_path)

    @property
    def model(self) -> str:
        return "casemgr-local"

    def version(self, capability: str) -> tuple[str | None, str | None]:
        if capability == "classify":
            parts = [f"{classifier.MODEL_KIND}:{self.category_model.version}"]
            for name in (TargetName.urgency, TargetName.intent):
                cm = self._target_model(name)
                if cm is not None:
                    parts.append(f"{name.value}:{cm.version}")
            return "+".join(parts), None
        if capability == "extract_contract":
            return f"{contracts.MODEL_KIND}:{self.contract_model.version}", None
        if capability == "draft_reply":
            return "macro-draft-v1", None
        return f"rules-{capability}-v1", None

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def _target_model(self, name: TargetName) -> classifier.CategoryModel | None:
        try:
            return classifier.default_model(prefix=TARGETS[name].prefix)
        except FileNotFoundError:
            return None

    def _scored(self, cm: classifier.CategoryModel, text: str, label: str, conf: float) -> Scored:
        words = cue_words(cm, text, label)
        sentence = best_sentence(text, words)
        evidence = words + ([sentence] if sentence else [])
        if not words:
            # No word of this text speaks for the label: the model is guessing from its prior.
            conf = min(conf, NO_EVIDENCE_CONFIDENCE)
        return Scored(label=label, confidence=round(conf, 4), evidence=evidence[:8])

    def classify_batch(self, texts: list[str]) -> list[Classification]:
        category_model = self.category_model  # once: each lookup finds the newest artefact on disk
        preds = category_model.predict(texts)
        urgency_cm = self._target_model(TargetName.urgency)
        intent_cm = self._target_model(TargetName.intent)
        u_preds = urgency_cm.predict(texts) if urgency_cm else None
        i_preds = intent_cm.predict(texts) if intent_cm else None
        out = []
        for n, (text, (label, conf, probs)) in enumerate(zip(texts, preds, strict=True)):
            if urgency_cm is not None and u_preds is not None:
                urgency = self._scored(urgency_cm, text, u_preds[n][0], u_preds[n][1])
            else:
                u_label, u_conf, u_cues = signals.urgency(text)
                urgency = Scored(label=u_label, confidence=u_conf, evidence=u_cues[:8])
            intent = self._scored(intent_cm, text, i_preds[n][0], i_preds[n][1]) if intent_cm and i_preds else None
            s_label, s_conf, s_cues = signals.sentiment(text)
            category = self._scored(category_model, text, label, conf)
            scope = assess(text)
            scope_out = Scope(language=scope.language, spam=scope.spam, phishing=scope.phishing,
                              out_of_scope=scope.out_of_scope, needs_human=not scope.in_scope, reason=scope.reason,
                              evidence=scope.evidence[:8])
            if not scope.in_scope:
                # Spam, another language or no financial matter: no confident product and no raised priority.
                category = category.model_copy(update={"confidence": min(category.confidence, OUT_OF_SCOPE_CONFIDENCE)})
                urgency = Scored(label="normal", confidence=OUT_OF_SCOPE_CONFIDENCE, evidence=[scope.reason or ""])
                if intent is not None:
                    intent = Scored(label="other", confidence=OUT_OF_SCOPE_CONFIDENCE, evidence=[scope.reason or ""])
            out.append(Classification(
                category=category,
                urgency=urgency,
                sentiment=Scored(label=s_label, confidence=s_conf, evidence=s_cues[:8]),
                scores=probs,
                intent=intent,
                scope=scope_out,
            ))
        return out

    def summarize(self, text: str) -> Summary:
        return summarize(text)

    def suggest(self, text: str, allowed: AllowedActions, context: dict[str, Any] | None = None) -> Suggestion:
        ctx = context or {}
        category = ctx.get("category")
        urgency = ctx.get("urgency")
        if category is None or urgency is None:
            c = self.classify(text)
            category = category or c.category.label
            urgency = urgency or c.urgency.label
        return suggest_local(text, allowed, category=category, urgency=urgency,
                             facts_missing=bool(ctx.get("facts_missing")))

    def draft_reply(self, text: str, context: DraftContext) -> Draft:
        # From the case type's macros and the stage's SOPs, filled with the facts (casemgr.ai.drafting.local).
        from casemgr.ai.drafting.local import draft_local

        return draft_local(context)

    def extract_contract(self, text: str) -> ContractFacts:
        fields = extract_fields(text)
        clauses = self.contract_model.predict(text)
        facts = ContractFacts(
            **fields,
            clauses={c: Clause(present=clauses[c]["present"], span=clauses[c]["span"],
                               confidence=clauses[c]["confidence"]) for c in CLAUSES},
        )
        return facts
