"""The default provider: everything runs on this machine from shipped artefacts, no network."""

from __future__ import annotations

from typing import Any

from casemgr.ai import classifier, contracts, signals
from casemgr.ai.contract_fields import extract_fields
from casemgr.ai.providers.base import AIProvider
from casemgr.ai.schemas import (
    CLAUSES,
    Classification,
    Clause,
    ContractFacts,
    Scored,
    Suggestion,
    Summary,
)
from casemgr.ai.suggest import AllowedActions, suggest_local
from casemgr.ai.summarize import summarize


class LocalProvider(AIProvider):
    name = "local"

    def __init__(self, category_model_path: str | None = None, contract_model_path: str | None = None):
        self._category_path = category_model_path
        self._contract_path = contract_model_path

    @property
    def category_model(self) -> classifier.CategoryModel:
        return classifier.default_model(self._category_path)

    @property
    def contract_model(self) -> contracts.ClauseModel:
        return contracts.default_model(self._contract_path)

    @property
    def model(self) -> str:
        return "casemgr-local"

    def version(self, capability: str) -> tuple[str | None, str | None]:
        if capability == "classify":
            return f"{classifier.MODEL_KIND}:{self.category_model.version}", None
        if capability == "extract_contract":
            return f"{contracts.MODEL_KIND}:{self.contract_model.version}", None
        return f"rules-{capability}-v1", None

    def classify(self, text: str) -> Classification:
        return self.classify_batch([text])[0]

    def classify_batch(self, texts: list[str]) -> list[Classification]:
        preds = self.category_model.predict(texts)
        out = []
        for text, (label, conf, probs) in zip(texts, preds, strict=True):
            u_label, u_conf, _ = signals.urgency(text)
            s_label, s_conf, _ = signals.sentiment(text)
            out.append(Classification(
                category=Scored(label=label, confidence=round(conf, 4)),
                urgency=Scored(label=u_label, confidence=u_conf),
                sentiment=Scored(label=s_label, confidence=s_conf),
                scores=probs,
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

    def extract_contract(self, text: str) -> ContractFacts:
        fields = extract_fields(text)
        clauses = self.contract_model.predict(text)
        facts = ContractFacts(
            **fields,
            clauses={c: Clause(present=clauses[c]["present"], span=clauses[c]["span"],
                               confidence=clauses[c]["confidence"]) for c in CLAUSES},
        )
        return facts
