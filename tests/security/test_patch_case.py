"""PATCH /api/cases/{id} validates against the case type (issue 18).

It accepted any category string, CR/LF in subjects, and `fields.customer_tier` without touching the
`customer_tier` column that the routing rules read, so the two disagreed and routing ignored the change.
"""

from __future__ import annotations

from typing import Any

import pytest


def _get(client: Any, case_id: int) -> dict[str, Any]:
    r = client.get(f"/api/cases/{case_id}")
    assert r.status_code == 200
    return r.json()


def _patch(client: Any, case_id: int, **body: Any) -> Any:
    return client.patch(f"/api/cases/{case_id}", json={"version": _get(client, case_id)["version"], **body})


@pytest.mark.parametrize("body", [
    {"category": "made_up"},
    {"category": "Credit_Card"},
    {"fields": {"category": "made_up"}},
    {"category": "credit_card", "fields": {"category": "mortgages_and_loans"}},
    {"fields": {"customer_tier": "diamond"}},
    {"subject": "Refund\r\nBcc: everyone@example.com"},
    {"subject": "line one\nline two"},
    {"subject": "line one\u2028line two"},
])
def test_invalid_patch_is_refused_and_changes_nothing(agent_client, make_case, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    before = _get(agent_client, case_id)
    r = _patch(agent_client, case_id, **body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    after = _get(agent_client, case_id)
    assert (after["version"], after["subject"], after["category"], after["fields"]) == \
        (before["version"], before["subject"], before["category"], before["fields"])


def test_category_from_the_case_types_choices_lands_in_column_and_fields(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    r = _patch(agent_client, case_id, category="debt_collection")
    assert r.status_code == 200, r.text
    assert r.json()["category"] == "debt_collection" and r.json()["fields"]["category"] == "debt_collection"
    r = _patch(agent_client, case_id, fields={"category": "credit_card"})
    assert r.json()["category"] == "credit_card" and r.json()["fields"]["category"] == "credit_card"


def test_a_case_type_without_categories_takes_none(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case(case_type="contract", subject="NDA with ACME")
    assert _patch(agent_client, case_id, category="credit_card").status_code == 422


def test_fields_customer_tier_moves_the_routed_column_and_routing_sees_it(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import read_session
    from casemgr.rules.facts import facts_from_case

    case_id = make_case()
    r = _patch(agent_client, case_id, fields={"customer_tier": "platinum"})
    assert r.status_code == 200, r.text
    assert r.json()["customer_tier"] == "platinum" and r.json()["fields"]["customer_tier"] == "platinum"
    from casemgr.cases.models import Case

    with read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None and facts_from_case(case)["customer_tier"] == "platinum"


def test_single_line_subject_is_accepted(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    r = _patch(agent_client, case_id, subject="Card charged twice (again)")
    assert r.status_code == 200 and r.json()["subject"] == "Card charged twice (again)"
