"""Test data for governed learning (issue 21): reviewed category decisions whose right answers we choose.

Two populations, both built here (nothing from ../shared/data, which the shipped model trained on):
- `generic`: complaint texts from fixed templates; reviewers accept what the active model says, so on them the
  active model is right by construction and no candidate can beat it;
- `drift`: complaints about "QuillPay", a buy-now-pay-later product the shipped model never saw, written with
  card words (statement, charge, card) but that reviewers file under mortgages_and_loans: the active model gets
  them wrong, and a candidate that learned from the overrides can get them right.

Every item goes through the real path: a case (create_case), an applied classify decision sampled for review
(record_decision), and a reviewer's verdict (review_decision: accept, or override with the right value).
Also used by the browser journeys (run inside the served data dir).
"""

from __future__ import annotations

import random
from typing import Any

CATEGORIES = ("credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking")
GENERIC = {
    "credit_card": ["my credit card was charged twice for one purchase", "the card issuer refused my chargeback",
                    "annual fee on my card was not disclosed", "interest on my card balance went up"],
    "credit_reporting": ["my credit report lists an account that is not mine", "the bureau will not correct my report",
                         "a late payment on my report is wrong", "inquiry on my credit file i never authorised"],
    "debt_collection": ["a collector keeps calling about a debt i do not owe", "collection agency threatened me",
                        "they want to collect a medical bill already paid", "debt collector called my employer"],
    "mortgages_and_loans": ["my mortgage escrow payment was miscalculated", "the servicer lost my loan modification",
                            "my student loan payment was misapplied", "the lender added fees to my auto loan"],
    "retail_banking": ["my checking account was closed without notice", "the bank held my deposit for weeks",
                       "overdraft fees on my savings account", "a wire transfer from my account never arrived"],
}
DRIFT = ["quillpay statement shows a charge for my card purchase plan",
         "quillpay split my card charge into instalments and charged a late fee",
         "the quillpay plan on my card statement charged me twice",
         "quillpay instalment charge appeared on my card after i paid",
         "quillpay card purchase plan charged interest i was not told about"]
TAILS = ["please help", "i want this fixed", "nobody answers my calls", "this happened last month",
         "i have written twice", "i am very frustrated", "they promised a refund", "i need a response"]


def generic_texts(n: int, seed: int = 1) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cat = CATEGORIES[i % len(CATEGORIES)]
        a, b = rnd.sample(GENERIC[cat], 2)
        out.append((a.capitalize(), f"{a} and {b}. {rnd.choice(TAILS)}. ref {seed}-{i}"))
    return out


def drift_texts(n: int, seed: int = 2) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rnd.sample(DRIFT, 2)
        out.append(("QuillPay instalment problem", f"{a}. {b}. {rnd.choice(TAILS)}. ref {seed}-{i}"))
    return out


def active_predictions(texts: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """What the category model in force says about each (subject, description)."""
    from casemgr.ai import classifier
    from casemgr.learning.dataset import case_text
    from casemgr.learning.model_doc import active_category_path

    cm = classifier.default_model(active_category_path())
    return [(label, conf) for label, conf, _ in cm.predict([case_text(s, d) for s, d in texts])]


def seed_reviewed(texts: list[tuple[str, str]], labels: list[str | None], *, reviewer: str = "user:reviewer",
                  model_version: str | None = None) -> list[int]:
    """One reviewed decision per text: the AI proposes what the active model predicts; the reviewer accepts it
    when `label` is None or equal, else overrides it with `label`. Returns the decision ids."""
    import yaml

    from casemgr.cases import service as cases
    from casemgr.cases.schemas import CaseCreate, PartyIn
    from casemgr.db import write_session
    from casemgr.governance import service as gov
    from casemgr.governance.decide import AIOutput
    from casemgr.governance.policy import parse_policy, policy_path

    data = yaml.safe_load(policy_path().read_text(encoding="utf-8"))
    data["review"]["sample_rate"] = 1.0
    data["decisions"]["classify"]["threshold"] = 0.0
    data["decisions"]["classify"].pop("thresholds_by_category", None)
    sampled = parse_policy(yaml.safe_dump(data), "learning-test-policy.yaml")
    preds = active_predictions(texts)
    version = model_version or "tfidf-cue-ensemble-v2:active"
    ids = []
    with write_session() as s:
        for (subject, description), label, (ai_label, conf) in zip(texts, labels, preds, strict=True):
            case = cases.create_case(s, CaseCreate(case_type="complaint", subject=subject, description=description,
                                                   party=PartyIn(name="Pat Doe", email="pat@example.com")),
                                     actor="user:test", route=False)
            row = gov.record_decision(s, case, AIOutput(kind="classify", field="category",
                                                        value={"category": ai_label}, confidence=round(conf, 4),
                                                        model_version=version, provider="local"),
                                      policy=sampled, route=False)
            assert row.review_status == "sampled", (row.outcome, row.reason)
            if label is None or label == ai_label:
                gov.review_decision(s, int(row.id or 0), actor=reviewer, roles={"reviewer"}, verdict="accept",
                                    policy=sampled)
            else:
                gov.review_decision(s, int(row.id or 0), actor=reviewer, roles={"reviewer"}, verdict="override",
                                    reason_code="wrong_category", value={"category": label}, policy=sampled)
            ids.append(int(row.id or 0))
    return ids


def seed_generic_accepts(n: int, seed: int = 1, **kw: Any) -> list[int]:
    return seed_reviewed(generic_texts(n, seed), [None] * n, **kw)


def seed_drift_overrides(n: int, seed: int = 2, **kw: Any) -> list[int]:
    return seed_reviewed(drift_texts(n, seed), ["mortgages_and_loans"] * n, **kw)
