"""Helpers for governance tests: policy variants, cases, and a deterministic in-process AI provider."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from casemgr.ai.providers.base import AIError, AIProvider
from casemgr.ai.schemas import Classification, ContractFacts, KeyFacts, Scored, Suggestion, Summary
from casemgr.cases import service as cases
from casemgr.cases.schemas import CaseCreate
from casemgr.governance.policy import Policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY_FILE = ROOT / "policies" / "ai-policy.yaml"


def base_policy_data() -> dict[str, Any]:
    return yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))


def policy_text(mutate: Any = None, **top: Any) -> str:
    data = copy.deepcopy(base_policy_data())
    data.update(top)
    if mutate is not None:
        mutate(data)
    return yaml.safe_dump(data, sort_keys=False)


def policy(mutate: Any = None, **top: Any) -> Policy:
    return parse_policy(policy_text(mutate, **top), "test-policy.yaml")


def new_case(session: Any, subject: str = "Card charged twice", description: str = "I was charged twice.",
             case_type: str = "complaint", route: bool = True, **kw: Any) -> Any:
    return cases.create_case(session, CaseCreate(case_type=case_type, subject=subject, description=description, **kw),
                             actor="user:test", route=route)


class StubProvider(AIProvider):
    """A provider that answers from fixed values (or fails), standing in for a model whose answers we choose."""

    def __init__(self, *, name: str = "local", category: str = "credit_card", category_conf: float = 0.9,
                 urgency: str = "high", urgency_conf: float = 0.85, action: str | None = "triage",
                 action_conf: float = 0.7, fail: set[str] | None = None, summary: str = "Customer was charged twice."):
        self.name = name
        self.category, self.category_conf = category, category_conf
        self.urgency, self.urgency_conf = urgency, urgency_conf
        self.action, self.action_conf = action, action_conf
        self.fail = fail or set()
        self.summary_text = summary
        self.seen: list[tuple[str, str]] = []

    @property
    def model(self) -> str:
        return "stub-model"

    def version(self, capability: str) -> tuple[str | None, str | None]:
        return f"stub-{capability}-v1", "p1"

    def _check(self, capability: str, text: str) -> None:
        self.seen.append((capability, text))
        if capability in self.fail or "all" in self.fail:
            raise AIError(f"{capability} failed (stub)")

    def classify(self, text: str) -> Classification:
        self._check("classify", text)
        return Classification(category=Scored(label=self.category, confidence=self.category_conf),
                              urgency=Scored(label=self.urgency, confidence=self.urgency_conf),
                              sentiment=Scored(label="negative", confidence=0.8))

    def summarize(self, text: str) -> Summary:
        self._check("summarize", text)
        return Summary(summary=self.summary_text, sentences=[self.summary_text], key_facts=KeyFacts())

    def suggest(self, text: str, allowed: Any, context: dict[str, Any] | None = None) -> Suggestion:
        self._check("suggest", text)
        return Suggestion(action=self.action, rationale="stub", confidence=self.action_conf)

    def extract_contract(self, text: str) -> ContractFacts:
        self._check("extract_contract", text)
        from casemgr.ai.schemas import Clause, empty_clauses

        clauses = empty_clauses()
        clauses["Uncapped Liability"] = Clause(present=True, span="liability is unlimited", confidence=0.9)
        return ContractFacts(parties=["Acme"], governing_law="New York", clauses=clauses)
