"""The AI policy form editor (issue 21): built from the schema so it cannot drift, round-trips the policy text
(comments kept), and shows the YAML view's validation problems at the inputs they concern."""

from __future__ import annotations

import difflib
import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casemgr.casetypes.registry import get_registry
from casemgr.governance import policy_form as pf
from casemgr.governance.policy import DECISION_KINDS, AIPolicy, content_version, parse_policy
from tests.web._helpers import HTML, login

from .util import POLICY_FILE, policy_text

BASE = POLICY_FILE.read_text(encoding="utf-8")
BASE_VERSION = {"base_version": content_version(BASE)}  # the version the form was opened on (hidden input)


def _vocabulary(prop: str) -> list[str]:
    """The keys a dict property is filled with, straight from the registry (not from the form module)."""
    reg = get_registry()
    if prop == "decisions":
        return list(DECISION_KINDS)
    if prop == "thresholds_by_case_type":
        return list(reg.case_types)
    if prop == "thresholds_by_category":
        return sorted({c for ct in reg.case_types.values() for f in ct.fields if f.name == "category"
                       for c in f.choices or ()})
    raise AssertionError(f"the schema has a new dict property {prop!r}: give the form a vocabulary for it")


def schema_fields() -> list[tuple[str, str | None]]:
    """(input name, description) for every field of the JSON schema of AIPolicy, dict keys and list rows filled."""
    schema = AIPolicy.model_json_schema()
    defs = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return defs[node["$ref"].split("/")[-1]]
        for alt in node.get("anyOf", ()):
            if alt.get("type") != "null":
                return resolve(alt) if "$ref" in alt else alt
        return node

    out: list[tuple[str, str | None]] = []

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for prop, node in obj["properties"].items():
            name, target = f"{prefix}{prop}", resolve(node)
            if "properties" in target:
                out.append((name, node.get("description")))
                walk(target, name + ".")
            elif target.get("type") == "object" and isinstance(target.get("additionalProperties"), dict):
                out.append((name, node.get("description")))
                inner = resolve(target["additionalProperties"])
                for key in _vocabulary(prop):
                    if "properties" in inner:
                        walk(inner, f"{name}.{key}.")
                    else:
                        out.append((f"{name}.{key}", node.get("description")))
            elif target.get("type") == "array" and "properties" in resolve(target.get("items", {})):
                out.append((name, node.get("description")))
                walk(resolve(target["items"]), f"{name}.0.")
            else:
                out.append((name, node.get("description")))

    walk(schema, "")
    return out


@pytest.fixture
def lead(app, make_user) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    name, pw = make_user("governance")
    c = TestClient(app)
    return c, login(c, name, pw)


def test_every_schema_field_is_an_input_with_its_help_text(lead) -> None:  # type: ignore[no-untyped-def]
    c, _ = lead
    page = c.get("/governance/policy/form", headers=HTML)
    assert page.status_code == 200
    names = set(re.findall(r'name="([^"]+)"', page.text))
    fields = schema_fields()
    assert len(fields) > 150  # 12 kinds x (5 columns + 5 categories + 4 case types), and the rest
    containers = {"providers", "limits", "review", "decisions", "review.strata"}
    missing = [n for n, _ in fields if n not in names and n not in containers
               and not any(n.startswith(f"decisions.{k}.thresholds_by_") and n.count(".") == 2 for k in DECISION_KINDS)]
    assert missing == [], f"schema fields with no input in the form: {missing}"
    undocumented = sorted({n for n, d in fields if not d})
    assert undocumented == [], f"schema fields without a description (the form's help text): {undocumented}"
    text = html.unescape(page.text)
    for name, desc in fields:
        assert desc and desc in text, f"help text of {name} is not on the page"


def test_a_new_schema_field_of_an_unknown_shape_breaks_the_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(pf.KEYS, "thresholds_by_case_type")
    with pytest.raises(TypeError, match="thresholds_by_case_type"):
        pf.sections()


@pytest.mark.parametrize("text", [BASE, policy_text(lambda d: d["review"].update(strata=[
    {"name": "low confidence", "confidence_below": 0.7, "rate": 0.5},
    {"name": "rare", "categories": ["credit_reporting"], "rate": 1.0}]) or d["decisions"]["set_priority"].update(
    thresholds_by_case_type={"complaint": 0.9}, below_threshold="reject", description="urgent needs a lead"))])
def test_an_untouched_form_gives_back_the_same_text(text: str) -> None:
    data = pf.base_data(text)
    values = pf.values_from_data(data)
    assert pf.data_from_values(values, data) == data
    assert pf.to_text(pf.data_from_values(values, data), text) == text


def _edit(values: dict[str, Any], text: str = BASE) -> str:
    return pf.to_text(pf.data_from_values(values, pf.base_data(text)), text)


def test_a_form_change_touches_only_its_line_and_keeps_comments() -> None:
    values = pf.values_from_data(pf.base_data(BASE))
    values["decisions.classify.thresholds_by_category.credit_reporting"] = "0.8"
    out = _edit(values)
    changed = [ln for ln in difflib.unified_diff(BASE.splitlines(), out.splitlines(), lineterm="", n=0)
               if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == ["-      credit_reporting: 0.7  # most confused with debt_collection: ask for more certainty",
                       "+      credit_reporting: 0.8  # most confused with debt_collection: ask for more certainty"]
    assert parse_policy(out).model.decisions["classify"].thresholds_by_category == {"credit_reporting": 0.8}
    # A kind left without a mode leaves the policy; a new per-category threshold and a stratum are added.
    values["decisions.advance_stage.mode"] = ""
    values["decisions.set_priority.thresholds_by_category.credit_card"] = "0.95"
    values.update({"review.strata.0.name": "unsure", "review.strata.0.confidence_below": "0.7",
                   "review.strata.0.rate": "0.5", "providers.redact_pii": ["card", "email"]})
    model = parse_policy(_edit(values)).model
    assert "advance_stage" not in model.decisions
    assert model.decisions["set_priority"].thresholds_by_category == {"credit_card": 0.95}
    assert [(s.name, s.confidence_below, s.rate) for s in model.review.strata] == [("unsure", 0.7, 0.5)]
    assert model.providers.redact_pii == ["email", "card"]  # the text's order is kept


def _problems_of(values: dict[str, Any]) -> tuple[dict[str, list[str]], list[dict[str, Any]], str]:
    from casemgr.policyfile import PolicyFileError

    text = _edit(values)
    with pytest.raises(PolicyFileError) as exc:
        parse_policy(text)
    errors, listed = pf.field_problems(exc.value.problems, text, pf.anchors(pf.sections()))
    return errors, listed, text


def test_problems_point_at_the_input_and_at_the_yaml_line() -> None:
    values = pf.values_from_data(pf.base_data(BASE))
    values.update({"decisions.classify.threshold": "1.5", "decisions.close_case.mode": "auto",
                   "review.sample_rate": "a lot", "review_by": ""})
    errors, listed, text = _problems_of(values)
    assert set(errors) == {"decisions.classify.threshold", "decisions.close_case", "review.sample_rate", "review_by"}
    assert "less than or equal to 1" in errors["decisions.classify.threshold"][0]
    assert "needs a threshold" in errors["decisions.close_case"][0]
    lines = text.splitlines()
    by_anchor = {p["anchor"]: p for p in listed}
    assert lines[by_anchor["decisions.classify.threshold"]["line"] - 1].strip().startswith("threshold: 1.5")
    assert lines[by_anchor["review.sample_rate"]["line"] - 1].strip().startswith("sample_rate: a lot")
    assert by_anchor["decisions.close_case"]["id"] == "f-decisions--close_case"


def test_the_page_shows_errors_at_the_field_and_the_yaml_view_at_the_line(lead) -> None:  # type: ignore[no-untyped-def]
    c, csrf = lead
    values = pf.values_from_data(pf.base_data(BASE))
    values["decisions.classify.threshold"] = "1.5"
    r = c.post("/governance/policy/form", data={**values, **BASE_VERSION, "csrf_token": csrf, "action": "check"}, headers=HTML)
    assert r.status_code == 422
    assert re.search(r'<input id="f-decisions--classify--threshold" name="decisions.classify.threshold" value="1.5"'
                     r'[^>]*aria-invalid="true"', r.text)
    assert 'id="f-decisions--classify--threshold-error"' in r.text and "less than or equal to 1" in r.text
    line = next(i for i, ln in enumerate(_edit(values).splitlines(), 1) if "threshold: 1.5" in ln)
    assert f"(ai-policy.yaml line {line})" in r.text
    # The same draft in the advanced YAML view: the problem at its line.
    r = c.post("/governance/policy/form", data={**values, **BASE_VERSION, "csrf_token": csrf, "action": "yaml"}, headers=HTML)
    assert r.status_code == 200 and "The form&#39;s draft, as YAML" in r.text
    assert f'<li id="line-{line}" class="bad">' in r.text and "threshold: 1.5" in html.unescape(r.text)


def test_a_valid_form_shows_the_change_in_words_and_the_simulation_then_submits(lead, app, make_user) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import read_session
    from casemgr.documents import changes

    c, csrf = lead
    values = pf.values_from_data(pf.base_data(BASE))
    values["decisions.classify.thresholds_by_category.credit_reporting"] = "0.8"
    r = c.post("/governance/policy/form", data={**values, **BASE_VERSION, "csrf_token": csrf, "action": "simulate"}, headers=HTML)
    assert r.status_code == 200 and 'id="valid"' in r.text and 'id="simulation"' in r.text
    assert "classify: threshold 0.7 → 0.8 for credit_reporting" in r.text
    assert "redact" not in r.text.split('id="diff-words"')[1].split("</section>")[0]  # nothing else in words
    r = c.post("/governance/policy/form", data={**values, **BASE_VERSION, "csrf_token": csrf, "action": "publish", "reason": ""},
               headers=HTML)
    assert r.status_code == 422 and "Give a reason" in r.text
    r = c.post("/governance/policy/form", data={**values, **BASE_VERSION, "csrf_token": csrf, "action": "publish",
                                                "reason": "credit reporting needs more certainty"}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/governance/policy?done=request"
    with read_session() as s:
        [req] = changes.listing(s, status="pending")
        assert req.reason == "credit reporting needs more certainty"
        assert "credit_reporting: 0.8  # most confused" in req.files["ai-policy.yaml"]


def test_a_form_opened_before_another_change_was_published_is_refused(lead, api_key) -> None:  # type: ignore[no-untyped-def]
    """The form holds a whole policy: submitted over a newer version it would undo that change (409, not silently)."""
    from casemgr.db import read_session
    from casemgr.documents import changes

    c, csrf = lead
    opened = re.search(r'name="base_version" value="([^"]+)"', c.get("/governance/policy/form", headers=HTML).text)
    assert opened and opened.group(1) == content_version(BASE)
    with TestClient(c.app, headers={"X-API-Key": api_key("governance")}) as other, \
            TestClient(c.app, headers={"X-API-Key": api_key("governance")}) as second:
        rid = other.post("/api/policy/ai/publish", json={"text": BASE.replace("sample_rate: 0.1", "sample_rate: 0.3"),
                                                         "reason": "more review"}).json()["request"]["id"]
        assert second.post(f"/api/changes/{rid}/approve", json={}).status_code == 200
    values = pf.values_from_data(pf.base_data(BASE))
    values["decisions.classify.threshold"] = "0.65"
    r = c.post("/governance/policy/form", data={**values, "base_version": opened.group(1), "csrf_token": csrf,
                                                "action": "publish", "reason": "mine"}, headers=HTML)
    assert r.status_code == 409 and "changed since this form was opened" in r.text
    with read_session() as s:
        assert changes.listing(s, status="pending") == []
    # Reloaded, the form shows the new version and a change goes through on top of it.
    page = c.get("/governance/policy/form", headers=HTML).text
    assert 'value="0.3"' in page
    fresh = re.search(r'name="base_version" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    values["review.sample_rate"] = "0.3"
    r = c.post("/governance/policy/form", data={**values, "base_version": fresh, "csrf_token": csrf,
                                                "action": "publish", "reason": "mine"}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303


def test_the_yaml_and_rules_pages_refuse_a_stale_draft_too(lead, api_key) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import read_session
    from casemgr.documents import changes

    c, csrf = lead
    policy_opened = re.search(r'name="base_version" value="([^"]+)"', c.get("/governance/policy", headers=HTML).text)
    rules_page = c.get("/governance/rules?file=complaints.yaml", headers=HTML).text
    rules_opened = re.search(r'name="base_version" value="([^"]+)"', rules_page)
    assert policy_opened and rules_opened
    with TestClient(c.app, headers={"X-API-Key": api_key("governance")}) as other, \
            TestClient(c.app, headers={"X-API-Key": api_key("governance")}) as second:
        rid = other.post("/api/policy/ai/publish", json={"text": BASE.replace("sample_rate: 0.1", "sample_rate: 0.3"),
                                                         "reason": "more review"}).json()["request"]["id"]
        assert second.post(f"/api/changes/{rid}/approve", json={}).status_code == 200
        files = other.get("/api/rules").json()["files"]
        rid = other.post("/api/rules/publish", json={"files": {**files, "complaints.yaml": files["complaints.yaml"]
                                                               + "\n# reviewed\n"}, "reason": "note"}).json()["request"]["id"]
        assert second.post(f"/api/changes/{rid}/approve", json={}).status_code == 200
    r = c.post("/governance/policy", data={"text": BASE.replace("threshold: 0.6", "threshold: 0.65"), "action": "publish",
                                           "reason": "mine", "base_version": policy_opened.group(1),
                                           "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 409 and "changed since you opened this page" in r.text
    text = html.unescape(re.search(r'<textarea id="editor"[^>]*>(.*?)</textarea>', rules_page, re.S).group(1))  # type: ignore[union-attr]
    r = c.post("/governance/rules", data={"text": text + "\n# mine\n", "file": "complaints.yaml", "action": "publish",
                                          "reason": "mine", "base_version": rules_opened.group(1),
                                          "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 409 and "changed since you opened this page" in r.text
    with read_session() as s:
        assert changes.listing(s, status="pending") == []
