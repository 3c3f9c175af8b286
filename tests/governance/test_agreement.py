"""Double review and inter-reviewer agreement (issue 21): a policy share of sampled decisions gets a second, blind
verdict from a different reviewer; percent agreement and Cohen's kappa on the review dashboard and API."""

from __future__ import annotations

import random
import re

import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import cohen_kappa_score

from casemgr.db import read_session, write_session
from casemgr.errors import Conflict, PermissionDenied, ValidationFailed
from casemgr.governance import service
from casemgr.governance.agreement import agreement, cohen_kappa
from casemgr.governance.decide import AIOutput
from tests.web._helpers import HTML, login

from .util import new_case, policy


def test_kappa_matches_the_textbook_and_sklearn() -> None:
    # 50 pairs: both accept 20, A accepts / B overrides 5, A overrides / B accepts 10, both override 15.
    po, kappa, n = cohen_kappa([("accept", "accept", 20), ("accept", "override", 5), ("override", "accept", 10),
                                ("override", "override", 15)])
    assert (po, kappa, n) == (0.7, 0.4, 50)  # pe = .5*.6 + .5*.4 = .5; (0.7 - 0.5) / 0.5
    rnd = random.Random(7)
    a = [rnd.choice(["accept", "override"]) for _ in range(300)]
    b = [x if rnd.random() < 0.8 else rnd.choice(["accept", "override"]) for x in a]
    triples = [(x, y, 1) for x, y in zip(a, b, strict=True)]
    assert cohen_kappa(triples)[1] == pytest.approx(cohen_kappa_score(a, b), abs=1e-4)
    assert cohen_kappa([("accept", "accept", 9)]) == (1.0, None, 9)  # all one verdict: nothing to discount
    assert cohen_kappa([]) == (None, None, 0)


def _double(session, n: int, **kw):  # type: ignore[no-untyped-def]
    p = policy(lambda d: d["review"].update(sample_rate=1.0, double_review_rate=1.0))
    out = []
    for i in range(n):
        case = new_case(session, subject=f"dr {i}", route=False)
        row = service.record_decision(session, case, AIOutput(kind="set_priority", value={"priority": "high"},
                                                              confidence=0.95, model_version="m"), policy=p,
                                      route=False)
        assert row.review_status == "sampled" and row.double_review
        out.append(int(row.id or 0))
    return out


def test_second_opinion_is_blind_from_another_reviewer_and_changes_nothing() -> None:
    with write_session() as s:
        d1, d2 = _double(s, 2)
    a, b = {"reviewer"}, {"reviewer"}
    with write_session() as s:
        service.review_decision(s, d1, actor="user:ann", roles=a, verdict="accept")
        service.review_decision(s, d2, actor="user:ann", roles=a, verdict="override", reason_code="other")
    with read_session() as s:
        mine = {r.id for r in service.review_queue(s, roles=a, actor="user:ann")}
        theirs = service.review_queue(s, roles=b, actor="user:bob")
        assert not {d1, d2} & mine  # the first reviewer is not asked again
        assert {r.id for r in theirs} >= {d1, d2}
        item = service.queue_item(next(r for r in theirs if r.id == d2), b, "user:bob")
        assert item["second_opinion"] and item["review_status"] == "second_opinion"
        assert item["reviewed_by"] is None and item["override_reason_code"] is None and item["can_verdict"]
        version_before = service.get_decision(s, d2).case_id
    with write_session() as s, pytest.raises(PermissionDenied, match="different reviewer"):
        service.review_decision(s, d1, actor="user:ann", roles=a, verdict="accept")
    with write_session() as s, pytest.raises(ValidationFailed, match="reason_code"):
        service.review_decision(s, d2, actor="user:bob", roles=b, verdict="override")
    from casemgr.cases.service import get_case

    with read_session() as s:
        case_before = get_case(s, version_before).version
    with write_session() as s:
        service.review_decision(s, d1, actor="user:bob", roles=b, verdict="accept")  # agrees
        service.review_decision(s, d2, actor="user:bob", roles=b, verdict="accept")  # disagrees
    with read_session() as s:
        assert get_case(s, version_before).version == case_before  # a second opinion never touches the case
        row = service.get_decision(s, d2)
        assert (row.review_status, row.second_verdict, row.second_reviewed_by) == ("overridden", "accept", "user:bob")
        got = agreement(s)
        assert not {d1, d2} & {r.id for r in service.review_queue(s, roles=b, actor="user:carl")}
    assert (got["n"], got["percent_agreement"], got["waiting"]) == (2, 0.5, 0)
    assert got["by_kind"][0]["kind"] == "set_priority"
    with write_session() as s, pytest.raises(Conflict):
        service.review_decision(s, d2, actor="user:carl", roles=b, verdict="accept")


def test_no_double_review_at_rate_zero_and_the_slice_follows_the_rate() -> None:
    p0 = policy(lambda d: d["review"].update(sample_rate=1.0, double_review_rate=0.0))
    half = policy(lambda d: d["review"].update(sample_rate=1.0, double_review_rate=0.5))
    with write_session() as s:
        flags0, flags_half = [], []
        for i in range(200):
            case = new_case(s, subject=f"r {i}", route=False)
            out = AIOutput(kind="set_priority", value={"priority": "high"}, confidence=0.95)
            flags0.append(service.record_decision(s, case, out, policy=p0, route=False).double_review)
            flags_half.append(service.record_decision(s, case, out, policy=half, route=False).double_review)
    assert not any(flags0)
    assert 0.38 < sum(flags_half) / 200 < 0.62


def test_queue_filters_by_category_and_the_dashboard_shows_agreement(app, make_user) -> None:  # type: ignore[no-untyped-def]
    p = policy(lambda d: (d["review"].update(sample_rate=1.0, double_review_rate=1.0),
                          d["decisions"]["classify"].update(threshold=0.0)))
    with write_session() as s:
        ids = {}
        for cat in ("credit_card", "retail_banking"):
            case = new_case(s, subject=f"about {cat}", route=False)
            row = service.record_decision(s, case, AIOutput(kind="classify", field="category",
                                                            value={"category": cat}, confidence=0.9,
                                                            model_version="m"), policy=p, route=False)
            ids[cat] = int(row.id or 0)
    with read_session() as s:
        got = service.review_queue(s, roles={"reviewer"}, category="retail_banking")
        assert [r.id for r in got] == [ids["retail_banking"]]
    name, pw = make_user("reviewer")
    other, pw2 = make_user("reviewer")
    with TestClient(app) as c, TestClient(app) as c2:
        csrf = login(c, name, pw)
        page = c.get("/review?category=credit_card&band=high", headers=HTML).text
        assert f'id="decision-{ids["credit_card"]}"' in page and f'id="decision-{ids["retail_banking"]}"' not in page
        assert 'id="agreement"' in page and 'id="double-review-rate"' in page and 'id="f-category"' in page
        assert c.get("/review?band=low", headers=HTML).text.count('class="review-item"') == 0  # 0.9 is high
        # Override a classify decision with the right value: that is what becomes a labelled example.
        r = c.post(f"/review/{ids['credit_card']}", data={"csrf_token": csrf, "verdict": "override",
                                                          "reason_code": "wrong_category", "value": "debt_collection"},
                   headers=HTML, follow_redirects=True)
        assert r.status_code == 200 and "Decision overridden." in r.text
        csrf2 = login(c2, other, pw2)
        page2 = c2.get("/review", headers=HTML).text
        assert f'id="second-{ids["credit_card"]}"' in page2 and 'id="value-' + str(ids["credit_card"]) not in page2
        r = c2.post(f"/review/{ids['credit_card']}", data={"csrf_token": csrf2, "verdict": "override",
                                                           "reason_code": "wrong_category"},
                    headers=HTML, follow_redirects=True)
        assert "Second opinion recorded." in r.text and 'id="kappa"' in r.text
        assert re.search(r'id="percent-agreement">100%', r.text)
        api = c2.get("/api/review/queue?category=credit_card", headers={"X-CSRF-Token": csrf2}).json()
        assert api == []
    with read_session() as s:
        row = service.get_decision(s, ids["credit_card"])
        assert row.override_value == {"category": "debt_collection"} and row.second_verdict == "override"
        from casemgr.learning.dataset import examples

        (ex,) = [e for e in examples(s) if e.decision_id == ids["credit_card"]]
        assert ex.label == "debt_collection" and ex.verdict == "overridden"
