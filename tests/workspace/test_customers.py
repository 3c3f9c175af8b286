"""GET /api/customers/{email}/cases and search by customer email."""

from __future__ import annotations

from tests.web._helpers import HTML, add_inbound_message

from .conftest import make_cases, versions


def test_customer_cases_open_and_closed(person, web_client) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    mine = make_cases(3, email="Kim.Lee@Example.com", subject="Kim problem")
    make_cases(2, email="other@example.com", subject="Other problem")
    add_inbound_message(mine[0], "from my work address", sender="Kim Lee <kim@work.example>")
    params = {"reason": "solved", "resolution_code": "billing_error"}
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": params,
                                                   "cases": versions(mine[:1])})
    assert r.json()["results"][0]["result"] == "ok"
    r = agent.client.get("/api/customers/kim.lee@example.com/cases")
    assert r.status_code == 200, r.text
    body = r.json()
    assert sorted(c["id"] for c in body["cases"]) == sorted(mine)
    assert body["open"] == 2 and body["closed"] == 1 and body["names"] == ["Pat Doe"]
    assert body["addresses"] == ["kim.lee@example.com", "kim@work.example"]
    assert agent.client.get("/api/customers/nobody@example.com/cases").json()["cases"] == []
    assert agent.client.get("/api/customers/not-an-email/cases").status_code == 422
    c, _ = web_client("agent")
    page = c.get("/queue?q=kim.lee@example.com", headers=HTML).text
    assert "Kim problem 1" in page and "Other problem" not in page and 'id="customer-search"' in page
