"""Script payloads in every field a page renders stay inert text: no element, attribute, event handler or
javascript: URL comes out of user-controlled content."""

from __future__ import annotations

from html.parser import HTMLParser

from ._helpers import HTML, add_inbound_message, add_sampled, add_suggestion

PAYLOADS = [
    "<script>alert('xss-1')</script>",
    '<img src=x onerror="alert(\'xss-2\')">',
    '<a href="javascript:alert(\'xss-3\')">click</a>',
    '"><svg onload=alert(4)>',
    "</textarea><script>alert(5)</script>",
    "javascript:alert(6)",
    "{{ 7*7 }}{% raw %}",
]
EVIL = " ".join(PAYLOADS)


class Audit(HTMLParser):
    """Collects what would be active: scripts, event-handler attributes, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[tuple[str, str]] = []
        self.js_urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "script":
            self.scripts.append(dict(attrs))
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if name in ("href", "src", "action", "formaction") and value and \
                    value.strip().lower().startswith("javascript:"):
                self.js_urls.append(value)


def assert_inert(html: str, where: str) -> None:
    a = Audit()
    a.feed(html)
    # Only our two external scripts, never an inline one.
    assert all(s.get("src") in ("/static/htmx.min.js", "/static/app.js") for s in a.scripts), (where, a.scripts)
    assert a.handlers == [], (where, a.handlers)
    assert a.js_urls == [], (where, a.js_urls)
    assert "svg" not in a.tags and "img" not in a.tags, where
    assert "alert('xss-1')</script>" not in html, where
    assert "&lt;script&gt;" in html, f"{where}: the payload should be shown escaped"
    assert "{{ 7*7 }}" in html or "{{ 7*7 }}" in html.replace("&#39;", "'"), f"{where}: no template evaluation"


def test_payloads_render_inert_on_every_page(make_case, web_client, make_user) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import write_session
    from casemgr.users import service as users

    cid = make_case(subject=EVIL[:480], description=EVIL)
    add_inbound_message(cid, EVIL, subject=EVIL[:300], sender='"<script>alert(8)</script>" <x@example.com>',
                        attachment_name="<img src=x onerror=alert(9)>.html")
    add_suggestion(cid, rationale=EVIL)
    add_sampled(cid)  # the reviewer's queue holds applied decisions (issue 21): its evidence is the case text
    with write_session() as s:
        from casemgr.cases import service

        service.add_note(s, cid, EVIL, actor="user:<script>alert(10)</script>")
        users.create_user(s, "evil<script>alert(11)</script>", "correct-horse-battery", ["agent"],
                          display_name=EVIL[:200])
    agent, _ = web_client("agent")
    for path in ("/queue", f"/queue?q={EVIL[:150]}", f"/cases/{cid}"):
        r = agent.get(path, headers=HTML)
        assert r.status_code == 200, path
        assert_inert(r.text, path)
    reviewer, _ = web_client("reviewer")
    r = reviewer.get("/review", headers=HTML)
    assert_inert(r.text, "/review")
    admin, _ = web_client("admin")
    r = admin.get("/admin/users", headers=HTML)
    a = Audit()
    a.feed(r.text)
    assert a.handlers == [] and "evil&lt;script&gt;" in r.text


def test_policy_editor_echoes_hostile_text_inert(web_client) -> None:  # type: ignore[no-untyped-def]
    c, csrf = web_client("governance")
    r = c.post("/governance/policy", data={"csrf_token": csrf, "text": EVIL, "action": "check"}, headers=HTML)
    assert r.status_code == 422
    assert_inert(r.text, "/governance/policy")
    # The textarea cannot be closed early by the payload.
    assert r.text.count("</textarea>") == 1


def test_policy_form_echoes_hostile_values_inert(web_client) -> None:  # type: ignore[no-untyped-def]
    from casemgr.governance import policy_form as pf
    from casemgr.governance.policy import content_version, policy_path

    c, csrf = web_client("governance")
    text = policy_path().read_text(encoding="utf-8")
    values = {**pf.values_from_data(pf.base_data(text)), "base_version": content_version(text)}
    values.update({"name": EVIL, "decisions.classify.description": EVIL, "review.reason_codes": EVIL,
                   "decisions.classify.threshold": EVIL, "review.strata.0.name": EVIL})
    r = c.post("/governance/policy/form", data={**values, "csrf_token": csrf, "action": "check"}, headers=HTML)
    assert r.status_code == 422  # the threshold is no number: the problem echoes it, inert
    assert_inert(r.text, "/governance/policy/form")
    r = c.post("/governance/policy/form", data={**values, "csrf_token": csrf, "action": "yaml"}, headers=HTML)
    assert_inert(r.text, "/governance/policy (draft from the form)")
    assert r.text.count("</textarea>") == 1


def test_error_pages_escape_their_message(web_client) -> None:  # type: ignore[no-untyped-def]
    c, _ = web_client("agent")
    r = c.get("/cases/999999", headers=HTML)
    assert r.status_code == 404 and "<h1>Not found</h1>" in r.text
