"""Browser journeys (issue 21): a reviewer works 10 sampled items and a second reviewer gives the blind second
opinions (agreement and time per item on the dashboard); a candidate category model built from overrides is
refused when it does not beat the model in force, offered when it does, requested by one lead and approved by
another. Debian Chromium through Playwright against uvicorn on 127.0.0.1 (fixtures of test_browser.py); the
test data is built here (tests/learning/scenario.py) and trained in a separate process, as the worker would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.web.test_browser import ROOT, browser, login, page, server, shot  # noqa: F401 - fixtures reused

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only, pytest.mark.timeout(600)]

REVIEW_ITEMS = r'''
import json, yaml
from casemgr.cases import service as cases
from casemgr.cases.schemas import CaseCreate, PartyIn
from casemgr.db import write_session
from casemgr.governance.decide import AIOutput
from casemgr.governance.policy import parse_policy, policy_path
from casemgr.governance.service import record_decision
from tests.learning import scenario as sc

def pol(double):
    data = yaml.safe_load(policy_path().read_text(encoding="utf-8"))
    data["review"].update(sample_rate=1.0, double_review_rate=1.0 if double else 0.0)
    data["decisions"]["classify"]["threshold"] = 0.0
    data["decisions"]["classify"].pop("thresholds_by_category", None)
    return parse_policy(yaml.safe_dump(data), "journey-policy.yaml")

texts = sc.generic_texts(10, seed=99)
preds = sc.active_predictions(texts)
out = []
with write_session() as s:
    for i, ((subject, description), (label, conf)) in enumerate(zip(texts, preds)):
        case = cases.create_case(s, CaseCreate(case_type="complaint", subject=subject, description=description,
                                               party=PartyIn(name="Pat Doe", email="pat@example.com")),
                                 actor="system:journey", route=False)
        if i < 6:  # the category the model in force gives: right by construction (the reviewer accepts)
            output = AIOutput(kind="classify", field="category", value={"category": label}, confidence=round(conf, 4),
                              model_version="journey-model", provider="local", rationale=f"cue words for {label}")
        else:
            output = AIOutput(kind="set_priority", value={"priority": "urgent"}, confidence=0.97,
                              model_version="journey-model", provider="local",
                              rationale="urgency critical: the customer threatens legal action")
        row = record_decision(s, case, output, policy=pol(i in (0, 7)), route=False)
        assert row.review_status == "sampled", (row.outcome, row.reason)
        out.append({"id": row.id, "kind": row.kind, "double": row.double_review})
print(json.dumps(out))
'''

TRAIN = r'''
import json, sys
from tests.learning import scenario as sc
from casemgr.learning.candidates import train_candidate
what = sys.argv[1]
if what == "generic":
    sc.seed_generic_accepts(30, seed=5)
else:
    sc.seed_drift_overrides(30, seed=6)
print(json.dumps({k: v for k, v in train_candidate(actor="worker").items() if k != "holdout_decisions"}))
'''


def _run(served: dict[str, Any], script: str, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMGR_")}
    env.update({"CASEMGR_DATA_DIR": str(served["data"]), "CASEMGR_SECRET_KEY": "browser-test-secret",
                "CASEMGR_AI_INLINE": "false", "PYTHONPATH": str(ROOT),
                # The fast recipe (one TF-IDF logistic regression, no CV): the gate is the same code.
                "CASEMGR_LEARNING_RECIPE": "linear", "CASEMGR_LEARNING_FOLDS": "0", "CASEMGR_LEARNING_MIN_HOLDOUT": "5"})
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, check=True, capture_output=True, text=True,
                         timeout=400, cwd=str(ROOT))
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_journey_reviewer_works_ten_sampled_items_and_a_second_reviewer_agrees(page: Any, server: dict[str, Any]  # noqa: F811
                                                                             ) -> None:
    from playwright.sync_api import expect

    items = _run(server, REVIEW_ITEMS)
    assert len(items) == 10 and [i["double"] for i in items].count(True) == 2
    login(page, server, "reviewer")
    page.goto("/review")
    # Only this journey's items: the queue filter by model version.
    page.get_by_label("Model version").fill("journey-model")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("article.review-item")).to_have_count(10)
    shot(page, "review-ten-items")
    for n, it in enumerate(items):
        page.goto("/review?model=journey-model")
        item = page.locator(f"#decision-{it['id']}")
        expect(item).to_be_visible()
        # The evidence comes before the verdict buttons.
        evidence = item.locator(f"#evidence-{it['id']}")
        expect(evidence).to_be_visible()
        assert evidence.bounding_box()["y"] < item.get_by_role("button", name="Accept").bounding_box()["y"]  # type: ignore[index]
        page.wait_for_timeout(300)
        if it["kind"] == "set_priority" and n % 2:
            item.get_by_label("Override reason").select_option("wrong_priority")
            item.get_by_label("Comment").fill("Polite enquiry, no threat")
            item.get_by_role("button", name="Override").click()
            expect(page.locator("#notice")).to_have_text("Decision overridden.")
        else:
            item.get_by_role("button", name="Accept").click()
            expect(page.locator("#notice")).to_have_text("Decision accepted.")
    page.goto("/review?model=journey-model")
    expect(page.locator("article.review-item")).to_have_count(0)  # the first reviewer is not asked for a second opinion
    speed = page.locator("#review-speed tbody tr", has_text="user:reviewer")
    expect(speed).to_have_count(1)
    assert int(speed.locator("td").nth(1).inner_text()) >= 10
    # The second reviewer sees the double-reviewed pair, blind, and disagrees on one.
    page.context.clear_cookies()
    login(page, server, "reviewer2")
    page.goto("/review?model=journey-model")
    doubles = [i for i in items if i["double"]]
    expect(page.locator("article.review-item")).to_have_count(len(doubles))
    for it in doubles:
        item = page.locator(f"#decision-{it['id']}")
        expect(item.locator(f"#second-{it['id']}")).to_contain_text("blind")
        expect(item).not_to_contain_text("user:reviewer")
    shot(page, "review-second-opinion")
    page.locator(f"#decision-{doubles[0]['id']}").get_by_role("button", name="Accept").click()
    expect(page.locator("#notice")).to_have_text("Second opinion recorded.")
    item = page.locator(f"#decision-{doubles[1]['id']}")
    item.get_by_label("Override reason").select_option("other")
    item.get_by_role("button", name="Override").click()
    expect(page.locator("#notice")).to_have_text("Second opinion recorded.")
    expect(page.locator("#agreement-n")).to_have_text("2")
    first = ["accept" if n not in (1, 3, 5, 7, 9) or items[n]["kind"] == "classify" else "override"
             for n in range(10)]
    agree = sum(1 for it, verdict in zip(doubles, ("accept", "override"), strict=True)
                if first[items.index(it)] == verdict)
    expect(page.locator("#percent-agreement")).to_have_text(f"{agree * 50}%")
    expect(page.locator("#kappa")).to_be_visible()
    shot(page, "review-agreement")


def test_journey_candidate_model_refused_then_offered_and_approved_by_a_second_lead(  # noqa: F811
        page: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    refused = _run(server, TRAIN, "generic")
    assert refused["verdict"] == "refused", refused["why"]
    login(page, server, "governance")
    page.goto("/governance/models", timeout=60_000)  # reads the model in force from disk; 15 s missed twice at load 7
    card = page.locator(f"#candidate-{refused['version']}")
    expect(card.locator(".tag")).to_have_text("refused")
    expect(card).to_contain_text("does not beat")
    expect(page.locator(f"#request-{refused['version']}")).to_have_count(0)
    expect(page.locator(f"#why-not-model-{refused['version']}")).to_contain_text("refused")
    active = page.locator("#active-version").inner_text()
    shot(page, "models-refused")

    offered = _run(server, TRAIN, "drift")
    assert offered["verdict"] == "offered", offered["why"]
    page.goto("/governance/models")
    card = page.locator(f"#candidate-{offered['version']}")
    expect(card.locator(".tag")).to_have_text("offered")
    cand_f1, act_f1 = card.locator(".candidate-f1").inner_text(), card.locator(".active-f1").inner_text()
    assert float(cand_f1) > float(act_f1), (cand_f1, act_f1)
    shot(page, "models-offered")
    card.get_by_label(re.compile("Reason for activating")).fill("QuillPay instalment plans are loans")
    page.locator(f"#request-{offered['version']}").click()
    expect(page.locator("#notice")).to_contain_text("Submitted for approval")
    request = page.locator('#change-requests article.change-request[data-kind="ai-model"]').first
    rid = request.get_attribute("id").removeprefix("change-")  # type: ignore[union-attr]
    expect(page.locator(f"#approve-{rid}")).to_have_count(0)
    expect(page.locator(f"#why-not-{rid}")).to_contain_text("different governance lead")
    expect(page.locator("#active-version")).to_have_text(active)  # nothing in force before the second lead
    shot(page, "models-request-own")

    page.context.clear_cookies()
    login(page, server, "governance2")
    page.goto("/governance/models")
    page.locator(f"#approve-comment-{rid}").fill("Checked the per-class report")
    page.locator(f"#approve-{rid}").click()
    expect(page.locator("#notice")).to_contain_text("the new model is in force")
    expect(page.locator("#active-version")).to_have_text(offered["version"])
    expect(page.locator(f'#model-history tr[data-model="{offered["version"]}"]')).to_contain_text("active")
    shot(page, "models-approved")
