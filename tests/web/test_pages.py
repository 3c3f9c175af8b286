"""The pages do their job: queue filters and keyset pages, htmx claim/assign, case actions with optimistic
locking, AI suggestions, replies, governance editors, reviewer overrides, admin users and keys."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from casemgr.cases.models import Case

from ._helpers import HTML, add_inbound_message, add_sampled, add_suggestion


def _version(case_id: int) -> int:
    from casemgr.db import read_session

    with read_session() as s:
        return s.get(Case, case_id).version  # type: ignore[union-attr]


def test_queue_filters_search_and_keyset_pages(make_case, web_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.web import pages_queue

    c, _ = web_client("agent")
    ids = [make_case(subject=f"Refund problem number {i}") for i in range(5)]
    make_case(subject="Mortgage statement wrong", description="escrow was miscalculated")
    monkeypatch.setattr(pages_queue, "PAGE_SIZE", 2)
    seen: list[str] = []
    url = "/queue?q=Refund"
    while url:
        r = c.get(url, headers=HTML)
        assert r.status_code == 200
        seen += re.findall(r">Refund problem number (\d)<", r.text)
        assert "Mortgage statement" not in r.text
        m = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = m.group(1).replace("&amp;", "&") if m else ""
    assert sorted(seen) == sorted(str(i) for i in range(5)) and len(seen) == len(ids)
    r = c.get("/queue?q=escrow", headers=HTML)
    assert "Mortgage statement wrong" in r.text and "Refund problem" not in r.text
    r = c.get("/queue?type=contract", headers=HTML)
    assert "Refund problem" not in r.text
    assert 'class="badge on_track"' in c.get("/queue", headers=HTML).text


def test_htmx_claim_and_assign_rows(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("agent")
    cid = make_case()
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    r = c.post(f"/queue/{cid}/claim", data={"version": _version(cid)}, headers=hx)
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr") and "<html" not in r.text
    me = re.search(r'<span class="who">(\S+)', c.get("/queue", headers=HTML).text).group(1)  # type: ignore[union-attr]
    assert f'<td class="assignee">{me}</td>' in r.text
    # A stale row (someone changed the case since) is refused with a clear message, nothing overwritten.
    r = c.post(f"/queue/{cid}/assign", data={"version": 1, "assignee": ""}, headers=hx)
    assert r.status_code == 200 and "changed by" in r.text and f'<td class="assignee">{me}</td>' in r.text
    r = c.post(f"/queue/{cid}/assign", data={"version": _version(cid), "assignee": ""}, headers=hx)
    assert '<td class="assignee">—</td>' in r.text


def test_case_page_transition_timeline_and_stale_edit(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("agent")
    other, other_csrf = web_client("agent")
    cid = make_case()
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert 'value="triage"' in page and "Acknowledge the customer" in page  # allowed stage + task
    assert "Work instruction" in page  # SOP text of the stage task
    v = _version(cid)
    # Someone else changes the case first ...
    r = other.post(f"/cases/{cid}/notes", data={"body": "checked the account", "version": v, "csrf_token": other_csrf},
                   headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    # ... so this user's move, made from the old page, is refused with who changed it.
    r = c.post(f"/cases/{cid}/transition", data={"to_stage": "triage", "version": v, "csrf_token": csrf},
               headers=HTML)
    assert r.status_code == 409, (r.url, re.findall(r"banner[^>]*>[^<]*", r.text), _version(cid), v)
    assert "This case was changed by" in r.text and "user:agent" in r.text
    assert "Reload the case" in r.text
    r = c.post(f"/cases/{cid}/transition", data={"to_stage": "triage", "version": _version(cid), "csrf_token": csrf},
               headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Stage changed." in r.text
    assert 'id="case-stage">Triage' in r.text or 'id="case-stage">triage' in r.text
    assert 'data-action="case.transitioned"' in r.text and "intake → triage" in r.text
    # A transition that is not allowed from here is refused.
    r = c.post(f"/cases/{cid}/transition", data={"to_stage": "feedback", "version": _version(cid), "csrf_token": csrf},
               headers=HTML)
    assert r.status_code == 409 and "cannot move" in r.text


def test_a_stale_note_keeps_the_typed_text(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("agent")
    cid = make_case()
    r = c.post(f"/cases/{cid}/notes", data={"body": "my long careful note", "version": 99, "csrf_token": csrf},
               headers=HTML)
    assert r.status_code == 409 and ">my long careful note</textarea>" in r.text


def test_reply_goes_to_the_thread_and_timeline(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("agent")
    cid = make_case()
    add_inbound_message(cid, "Where is my refund?")
    r = c.post(f"/cases/{cid}/reply", data={"body": "Your refund is on its way.", "version": _version(cid),
                                            "csrf_token": csrf}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Reply sent." in r.text
    assert "Your refund is on its way." in r.text and "To customer" in r.text
    assert 'data-action="message.reply_queued"' in r.text


def test_ai_suggestion_accept_and_reject(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("agent")
    lead, _ = web_client("lead")
    cid = make_case()
    d1 = add_suggestion(cid, rationale="Customer asked when the refund arrives.")
    d2 = add_suggestion(cid, kind="request_information", value={"text": "the card's last four digits"})
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert "AI-suggested" in page and "Customer asked when the refund arrives." in page
    assert f"/cases/{cid}/ai/{d1}/accept" in page
    assert "checked" not in page.split('id="ai"')[1].split("</section>")[0]  # nothing pre-selected
    # A lead does not hold the owner role (agent) of these suggestions: no buttons, and a POST is refused.
    lead_page = lead.get(f"/cases/{cid}", headers=HTML).text
    assert f"/ai/{d1}/accept" not in lead_page and "Waiting for agent" in lead_page
    r = c.post(f"/cases/{cid}/ai/{d2}/reject", data={"csrf_token": csrf, "reason": ""}, headers=HTML)
    assert r.status_code == 422 and "reason" in r.text
    r = c.post(f"/cases/{cid}/ai/{d1}/accept", data={"csrf_token": csrf}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "AI suggestion accepted." in r.text
    assert "Draft reply (not sent)" in r.text and 'data-action="ai.suggestion_accepted"' in r.text
    r = c.post(f"/cases/{cid}/ai/{d2}/reject", data={"csrf_token": csrf, "reason": "already have it"}, headers=HTML,
               follow_redirects=True)
    assert "AI suggestion rejected." in r.text and 'data-action="ai.suggestion_rejected"' in r.text


def test_attachments_are_downloads_never_rendered(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import read_session
    from casemgr.intake.models import Attachment

    c, _ = web_client("agent")
    cid = make_case()
    add_inbound_message(cid, "see attached", attachment_name="<img src=x onerror=alert(1)>.html")
    with read_session() as s:
        att = s.execute(select(Attachment)).scalars().first()
    r = c.get(f"/cases/{cid}/attachments/{att.id}")  # type: ignore[union-attr]
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-type"] == "application/octet-stream" and r.headers["x-content-type-options"] == "nosniff"
    assert "<" not in r.headers["content-disposition"].split("filename*=")[0]
    assert c.get(f"/cases/{cid + 1}/attachments/{att.id}").status_code == 404  # type: ignore[union-attr]


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_policy_editor_check_simulate_publish_rollback(web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.governance.policy import policy_path

    c, csrf = web_client("governance")
    page = c.get("/governance/policy", headers=HTML).text
    assert "kill_switch: normal" in page
    text = policy_path().read_text()
    rate = re.search(r"sample_rate: [0-9.]+", text).group(0)  # type: ignore[union-attr]
    new1, new2 = [v for v in ("sample_rate: 0.2", "sample_rate: 0.3", "sample_rate: 0.4") if v != rate][:2]
    bad = text.replace(rate, "sample_rate: 7", 1)
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if "sample_rate: 7" in ln)
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": bad, "action": "check"}, headers=HTML)
    assert r.status_code == 422 and f'href="#line-{line}" data-line="{line}">line {line}</a>' in r.text
    assert re.search(rf'<li id="line-{line}" class="bad">', r.text)
    # Publishing an invalid candidate is impossible.
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": bad, "action": "publish", "reason": "x"},
               headers=HTML)
    assert r.status_code == 422
    good = text.replace(rate, new1, 1)
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": good, "action": "simulate"}, headers=HTML)
    assert r.status_code == 200 and 'id="valid"' in r.text and 'id="simulation"' in r.text
    assert f"+  {new1}" in r.text and f"-  {rate}" in r.text
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": good, "action": "publish", "reason": ""},
               headers=HTML)
    assert r.status_code == 422 and "Give a reason" in r.text
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": good, "action": "publish",
                                           "reason": "sample more"}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200, re.findall(r"banner[^>]*>[^<]*", r.text)
    assert "Published" in r.text and "sample more" in r.text
    assert new1 in r.text
    good2 = good.replace(new1, new2, 1)
    c.post("/governance/policy", data={"csrf_token": csrf, "text": good2, "action": "publish", "reason": "more"},
           headers=HTML)
    from casemgr.db import read_session
    from casemgr.governance import store

    with read_session() as s:
        first = store.history(s)[-1].version
    r = c.post("/governance/policy/rollback", data={"csrf_token": csrf, "version": first, "reason": "too many"},
               headers=HTML, follow_redirects=True)
    assert "Rolled back." in r.text
    with read_session() as s:
        assert store.active_row(s).version == first  # type: ignore[union-attr]


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_rules_editor_shows_errors_at_their_line_and_publishes(web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("governance")
    page = c.get("/governance/rules?file=complaints.yaml", headers=HTML).text
    text = re.search(r'<textarea id="editor"[^>]*>(.*?)</textarea>', page, re.S).group(1)  # type: ignore[union-attr]
    import html as htmlmod

    text = htmlmod.unescape(text)
    lines = text.splitlines()
    idx = next(i for i, ln in enumerate(lines) if "queue:" in ln and ln.strip().startswith("queue:"))
    lines[idx] = lines[idx].split("queue:")[0] + "queue: no-such-queue"
    r = c.post("/governance/rules", data={"csrf_token": csrf, "file": "complaints.yaml", "text": "\n".join(lines),
                                          "action": "check"}, headers=HTML)
    assert r.status_code == 422 and f"line {idx + 1}</a>" in r.text and "no-such-queue" in r.text
    r = c.post("/governance/rules", data={"csrf_token": csrf, "file": "complaints.yaml", "text": text + "\n# tweak\n",
                                          "action": "publish", "reason": "comment only"}, headers=HTML,
               follow_redirects=True)
    assert r.status_code == 200 and "Published" in r.text and "comment only" in r.text


def test_reviewer_override_changes_the_override_rate(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("reviewer")
    cid = make_case()
    d = add_sampled(cid)
    page = c.get("/review", headers=HTML).text
    assert f'id="decision-{d}"' in page and 'id="override-rate">n/a' in page
    assert re.search(r'<select id="code-\d+" name="reason_code" required><option value="">choose', page)
    r = c.post(f"/review/{d}", data={"csrf_token": csrf, "verdict": "override"}, headers=HTML)
    assert r.status_code == 422 and "reason_code" in r.text
    r = c.post(f"/review/{d}", data={"csrf_token": csrf, "verdict": "override", "reason_code": "other",
                                     "comment": "not what the customer asked"}, headers=HTML, follow_redirects=True)
    assert "Decision overridden." in r.text and 'id="override-rate">100.0%' in r.text
    assert f'id="decision-{d}"' not in r.text


def test_admin_creates_users_and_api_keys(web_client, app) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    c, csrf = web_client("admin")
    r = c.post("/admin/users", data={"csrf_token": csrf, "username": "newbie", "roles": ["agent", "reviewer"]},
               headers=HTML)
    assert r.status_code == 200 and "User newbie created." in r.text
    pw = re.search(r'id="secret-value">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    r = c.post("/admin/api-keys", data={"csrf_token": csrf, "name": "ci-key", "owner": "newbie", "scopes": ["agent"]},
               headers=HTML)
    secret = re.search(r'id="secret-value">(cm_[^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    with TestClient(app) as api:
        assert api.get("/api/cases", headers={"X-API-Key": secret}).status_code == 200
        from casemgr.db import read_session
        from casemgr.users.models import ApiKey

        with read_session() as s:
            kid = s.execute(select(ApiKey.id).where(ApiKey.name == "ci-key")).scalar_one()
        r = c.post(f"/admin/api-keys/{kid}/revoke", data={"csrf_token": csrf}, headers=HTML, follow_redirects=True)
        assert "API key revoked." in r.text
        assert api.get("/api/cases", headers={"X-API-Key": secret}).status_code == 401
    from ._helpers import login

    with TestClient(app) as newbie:
        login(newbie, "newbie", pw)
        assert newbie.get("/review", headers=HTML).status_code == 200


def test_ai_panel_shows_the_enrichment_of_the_local_provider(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import write_session
    from casemgr.governance.enrich import enrich_case

    c, _ = web_client("agent")
    cid = make_case(subject="Credit report shows a debt I never had",
                    description="My credit report lists a collection account that is not mine. This is urgent, "
                                "I am applying for a mortgage next week and it hurts my score.")
    with write_session() as s:
        result = enrich_case(s, cid)
    assert result.status == "ok", result.reason
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert 'id="ai-classification"' in page and "Category:" in page and "confidence" in page
    assert "AI status: ok" in page


def test_contract_page_shows_terms_clauses_and_renewal(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import write_session

    c, _ = web_client("legal")
    cid = make_case(subject="Supply agreement", description="This agreement renews automatically.",
                    case_type="contract")
    with write_session() as s:
        case = s.get(Case, cid)
        case.contract = {"parties": ["ACME Ltd", "Widget Co"], "agreement": {"title": "Supply Agreement"},
                         "expiration_date": "2027-03-31", "renewal_term": "successive 1-year terms",
                         "clauses": {"auto_renewal": {"present": True, "span": "renews automatically",
                                                      "confidence": 0.91},
                                     "non_compete": {"present": False, "span": None, "confidence": 0.2}}}
        s.add(case)
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert 'id="renewal-date">2027-03-31<' in page
    assert "ACME Ltd, Widget Co" in page and "successive 1-year terms" in page
    assert "auto renewal" in page and "91%" in page and "renews automatically" in page


def test_review_rates_break_down_by_model_and_category(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = web_client("reviewer")
    add_suggestion(make_case())
    for by in ("model_version", "category", "policy_version", "bogus"):
        r = c.get(f"/review?by={by}", headers=HTML)
        assert r.status_code == 200
    assert "test-model" in c.get("/review?by=model_version", headers=HTML).text


def test_quarantine_reprocess_and_discard(web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import read_session
    from casemgr.intake.models import QuarantinedMessage
    from casemgr.intake.service import quarantine

    c, csrf = web_client("admin")
    raw = (b"From: Pat <pat@example.com>\r\nTo: complaints@example.com\r\nSubject: Charged twice\r\n"
           b"Message-ID: <held-1@example.com>\r\n\r\nMy card was charged twice for one order.\r\n")
    held = quarantine(raw, "parser was broken (fixed since)", channel="email", source="test").quarantine_id
    other = quarantine(b"\x00\x01 not mail", "unparseable", channel="email", source="test").quarantine_id
    page = c.get("/admin/quarantine", headers=HTML).text
    assert f'id="q-{held}"' in page and "parser was broken" in page
    r = c.post(f"/admin/quarantine/{held}/reprocess", data={"csrf_token": csrf}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Reprocessed." in r.text
    r = c.post(f"/admin/quarantine/{other}/discard", data={"csrf_token": csrf}, headers=HTML, follow_redirects=True)
    assert "Discarded" in r.text
    with read_session() as s:
        q1, q2 = s.get(QuarantinedMessage, held), s.get(QuarantinedMessage, other)
        assert q1.status == "reprocessed" and q1.case_id is not None  # type: ignore[union-attr]
        assert q2.status == "discarded"  # type: ignore[union-attr]
    assert f'href="/cases/{q1.case_id}"' in r.text  # type: ignore[union-attr]


def test_review_one_case_and_return_to_it(make_case, web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("reviewer")
    cid, other = make_case(), make_case(subject="Another one")
    d, d_other = add_sampled(cid), add_sampled(other)
    page = c.get(f"/review?case={cid}", headers=HTML).text
    assert f'id="decision-{d}"' in page and f'id="decision-{d_other}"' not in page
    r = c.post(f"/review/{d}", data={"csrf_token": csrf, "verdict": "override", "reason_code": "other",
                                     "back": f"/review?case={cid}"}, headers=HTML, follow_redirects=False)
    assert r.headers["location"] == f"/review?case={cid}&done=override"
    r = c.post(f"/review/{d_other}", data={"csrf_token": csrf, "verdict": "override", "reason_code": "other",
                                           "back": "https://evil.example/"}, headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/review?done=override"
