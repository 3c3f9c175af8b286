"""Issue 22: the model view, a server-rendered SVG per case type (stages, transitions, SLA and owner per stage,
tasks per stage) with the diff between two versions marked by class."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fastapi.testclient import TestClient

from casemgr.casetypes.registry import get_registry
from tests.casetypes.helpers import publish_v2
from tests.web._helpers import HTML, login

NS = {"s": "http://www.w3.org/2000/svg"}


def _svg(client: TestClient, url: str) -> ET.Element:
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    return ET.fromstring(r.text)


def _classes(el: ET.Element) -> set[str]:
    return set((el.get("class") or "").split())


def _stages(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-stage"): g for g in root.iter("{http://www.w3.org/2000/svg}g") if "stage" in _classes(g)}


def _transitions(root: ET.Element) -> dict[tuple[str, str], set[str]]:
    return {(p.get("data-from"), p.get("data-to")): _classes(p)
            for p in root.iter("{http://www.w3.org/2000/svg}path") if "transition" in _classes(p)}


def _sla(stage: ET.Element) -> ET.Element:
    return next(t for t in stage.iter("{http://www.w3.org/2000/svg}tspan") if "sla" in _classes(t))


def test_every_case_type_is_drawn_with_its_stages_transitions_sla_owner_and_tasks(agent_client) -> None:  # type: ignore[no-untyped-def]
    for ct in get_registry().case_types.values():
        root = _svg(agent_client, f"/api/casetypes/{ct.name}/model.svg")
        assert root.get("data-case-type") == ct.name
        stages = _stages(root)
        assert list(stages) == ct.stage_names
        assert set(_transitions(root)) == {(s.name, t) for s in ct.stages for t in s.transitions}
        for sd in ct.stages:
            g = stages[sd.name]
            text = "".join(g.itertext())
            assert f"owner: {sd.owner_role or 'none'}" in text
            if sd.sla:
                assert _sla(g).get("data-hours") == f"{sd.sla.hours:g}"
            for task in sd.tasks:
                assert task.name in text
            assert ("final" in _classes(g)) == sd.final
        assert all(_classes(g) >= {"stage", "same"} for g in stages.values())  # one version: no diff marks


def test_forward_moves_on_the_right_and_back_moves_on_the_left(agent_client) -> None:  # type: ignore[no-untyped-def]
    trans = _transitions(_svg(agent_client, "/api/casetypes/complaint/model.svg"))
    assert "forward" in trans[("intake", "triage")] and "back" in trans[("investigation", "triage")]
    assert "back" in trans[("closed", "triage")]  # reopen


def test_the_diff_between_two_versions_is_marked(agent_client) -> None:  # type: ignore[no-untyped-def]
    publish_v2()
    root = _svg(agent_client, "/api/casetypes/complaint/model.svg?version=v2&compare=v1")
    stages = _stages(root)
    assert "removed" in _classes(stages["feedback"])
    assert "changed" in _classes(stages["intake"]) and "changed" in _classes(stages["triage"])
    assert "same" in _classes(stages["investigation"])
    sla = _sla(stages["intake"])
    assert "changed" in _classes(sla) and sla.get("data-hours") == "2" and "was 4 h" in (sla.text or "")
    trans = _transitions(root)
    assert "added" in trans[("resolution", "closed")]
    assert "removed" in trans[("resolution", "feedback")] and "removed" in trans[("feedback", "closed")]
    assert "same" in trans[("intake", "triage")]
    # Another type did not change between the versions.
    other = _stages(_svg(agent_client, "/api/casetypes/contract/model.svg?version=v2&compare=v1"))
    assert all("same" in _classes(g) for g in other.values())


def test_model_page_embeds_the_svg_and_says_what_changed(app, make_user, make_case) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    publish_v2()
    with TestClient(app) as browser:
        login(browser, *make_user("agent"))
        case_page = browser.get(f"/cases/{case_id}", headers=HTML).text
        assert "process v1 (" in case_page
        link = re.search(r'href="(/process/model/complaint\?[^"]*)" id="model-link"', case_page)
        assert link, case_page[:2000]
        page = browser.get(link.group(1).replace("&amp;", "&") + "&compare=v2", headers=HTML)
        assert page.status_code == 200
        svg = page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
        assert 'data-case-type="complaint"' in svg and "<script" not in svg
        assert "stage feedback added" in page.text  # v1 compared with v2: feedback exists only in v1
        plain = browser.get(link.group(1).replace("&amp;", "&"), headers=HTML).text
        newer = re.search(r'href="([^"]+)" id="compare-in-force"', plain)
        assert newer, "a case on v1 links what changed in the version in force"
        changed = browser.get(newer.group(1).replace("&amp;", "&"), headers=HTML).text
        assert "stage feedback removed" in changed and "intake: SLA 4 h → 2 h" in changed
        assert browser.get("/process/models", headers=HTML).status_code == 200


def test_unknown_type_or_version_is_a_clear_404_or_422(agent_client) -> None:  # type: ignore[no-untyped-def]
    r = agent_client.get("/api/casetypes/nonesuch/model.svg")
    assert r.status_code == 404 and "nonesuch" in r.json()["detail"]
    r = agent_client.get("/api/casetypes/complaint/model.svg?version=v9")
    assert r.status_code == 422 and "v9" in r.json()["detail"]
