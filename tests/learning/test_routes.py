"""/governance/models and /api/ai/models (issue 21): refused candidates get no button, an offered one is requested
by one lead and approved by another through the change-request pages; rollback; API errors are 4xx."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from casemgr.learning import candidates
from tests.web._helpers import HTML, login

from . import scenario as sc


def test_models_page_and_api_refuse_offer_request_approve_rollback(app, make_user, api_key) -> None:  # type: ignore[no-untyped-def]
    sc.seed_generic_accepts(30)
    refused = candidates.train_candidate(actor="user:t")
    assert refused["verdict"] == "refused"
    sc.seed_drift_overrides(30)
    offered = candidates.train_candidate(actor="user:t")
    assert offered["verdict"] == "offered", offered["why"]
    r_v, o_v = refused["version"], offered["version"]

    lead1, pw1 = make_user("governance")
    lead2, pw2 = make_user("governance")
    reviewer, pwr = make_user("reviewer")
    with TestClient(app) as c1, TestClient(app) as c2, TestClient(app) as cr:
        csrf1, csrf2 = login(c1, lead1, pw1), login(c2, lead2, pw2)
        login(cr, reviewer, pwr)
        page = c1.get("/governance/models", headers=HTML).text
        assert f'id="candidate-{r_v}"' in page and f'id="candidate-{o_v}"' in page
        assert f'id="request-{r_v}"' not in page and f'id="why-not-model-{r_v}"' in page  # refused: no button
        assert f'id="request-{o_v}"' in page
        # A reviewer may look, but is offered no button that would answer 403.
        seen = cr.get("/governance/models", headers=HTML).text
        assert f'id="candidate-{o_v}"' in seen and f'id="request-{o_v}"' not in seen
        # The refused candidate cannot be requested through the page either (422, nothing stored).
        r = c1.post(f"/governance/models/{r_v}/request", data={"csrf_token": csrf1, "reason": "try"}, headers=HTML)
        assert r.status_code == 422 and "refused" in r.text
        r = c1.post(f"/governance/models/{o_v}/request", data={"csrf_token": csrf1, "reason": ""}, headers=HTML)
        assert r.status_code == 422
        r = c1.post(f"/governance/models/{o_v}/request", data={"csrf_token": csrf1, "reason": "QuillPay is a loan"},
                    headers=HTML, follow_redirects=True)
        # The message says which check refused it (one CI run got a 422 here that no rerun reproduced).
        main = re.search(r"(?s)<main.*?</main>", r.text)
        why = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.group(0) if main else r.text))[:1500]
        assert r.status_code == 200 and "Submitted for approval" in r.text, why
        rid = re.search(r'id="change-(\d+)" data-kind="ai-model"', r.text).group(1)  # type: ignore[union-attr]
        assert f'id="approve-{rid}"' not in r.text and "different governance lead" in r.text
        page2 = c2.get("/governance/models", headers=HTML).text
        assert f'id="approve-{rid}"' in page2
        r = c2.post(f"/governance/changes/{rid}/approve", data={"csrf_token": csrf2, "comment": "agreed"},
                    headers=HTML, follow_redirects=True)
        assert r.status_code == 200 and "the new model is in force" in r.text
        assert f'<code id="active-version">{o_v}</code>' in r.text
        assert f'data-model="{o_v}"' in r.text
        # The policy page lists the model versions in force beside the policy's own history.
        policy_page = c2.get("/governance/policy", headers=HTML).text
        assert 'id="policy-model-history"' in policy_page and f"<code>{o_v}</code>" in policy_page
        # Rollback to the bundled model from the history.
        bundled_row = re.search(r'name="version" value="([0-9a-f]+)"', r.text).group(1)  # type: ignore[union-attr]
        r = c2.post("/governance/models/rollback", data={"csrf_token": csrf2, "version": bundled_row,
                                                         "reason": "back to the shipped model"},
                    headers=HTML, follow_redirects=True)
        assert r.status_code == 200 and "Rolled back." in r.text
        assert f'<code id="active-version">{offered["active_version"]}</code>' in r.text

    key = api_key("governance")
    with TestClient(app) as c:
        h = {"X-API-Key": key}
        body = c.get("/api/ai/models", headers=h).json()
        assert body["active"]["source"] == "bundled"
        by_v = {x["version"]: x for x in body["candidates"]}
        assert by_v[r_v]["can_request"] is False and "refused" in by_v[r_v]["why_not"]
        assert by_v[o_v]["can_request"] is True  # compared with the bundled model, which is in force again
        assert [h_["model_version"] for h_ in body["history"]][:2] == [offered["active_version"], o_v]
        assert c.get(f"/api/ai/models/{o_v}", headers=h).json()["comparison"]["n"] >= 5
        assert c.get("/api/ai/models/000000000000", headers=h).status_code == 404
        assert c.get("/api/ai/models/not-a-version", headers=h).status_code == 422
        r = c.post(f"/api/ai/models/{r_v}/request", headers=h, json={"reason": "x"})
        assert r.status_code == 422 and "refused" in r.json()["detail"]
        r = c.post(f"/api/ai/models/{o_v}/request", headers=h, json={"reason": "again"})
        assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["kind"] == "ai-model"
        assert c.post("/api/ai/models/rollback", headers=h, json={"reason": "x", "to": "ffff"}).status_code == 404
        assert c.post("/api/ai/models/rollback", headers={"X-API-Key": api_key("reviewer")},
                      json={"reason": "x"}).status_code == 403
