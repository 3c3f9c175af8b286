"""The policy diff in words (issue 21)."""

from __future__ import annotations

from casemgr.db import read_session
from casemgr.governance import lifecycle
from casemgr.governance.policy_words import in_words

from .util import policy_text


def test_diff_in_words() -> None:
    def mutate(d):  # type: ignore[no-untyped-def]
        d["decisions"]["classify"]["mode"] = "suggest"
        d["decisions"]["classify"]["thresholds_by_category"]["credit_reporting"] = 0.75
        d["review"]["sample_rate"] = 0.2
    with read_session() as s:
        changes = lifecycle.diff(s, policy_text(mutate))["changes"]
    words = in_words(changes)
    assert "classify: auto → suggest; threshold 0.7 → 0.75 for credit_reporting" in words
    assert "review sample rate: 0.1 → 0.2" in words


def test_policy_page_shows_the_diff_in_words(app, make_user) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.web._helpers import HTML, login

    name, pw = make_user("governance")
    c = TestClient(app)
    csrf = login(c, name, pw)
    text = policy_text(lambda d: d["decisions"]["classify"].update(mode="suggest"))
    r = c.post("/governance/policy", data={"text": text, "action": "check", "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 200 and 'id="diff-words"' in r.text and "classify: auto → suggest" in r.text
