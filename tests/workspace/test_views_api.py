"""GET/POST/DELETE /api/views: personal views for everyone, shared ones for leads."""

from __future__ import annotations


def test_personal_and_shared_views(person) -> None:  # type: ignore[no-untyped-def]
    ann = person("ann", "agent")
    bob = person("bob", "agent")
    lead = person("lena", "lead")
    r = ann.client.post("/api/views", json={"name": "My urgent", "filters": {"priority": "urgent", "view": "mine"},
                                            "sort": "updated"})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["shared"] is False and mine["owner"] == "ann" and "priority=urgent" in mine["url"]
    assert "sort=updated" in mine["url"]
    assert ann.client.post("/api/views", json={"name": "My urgent"}).status_code == 409
    r = ann.client.post("/api/views", json={"name": "Team", "shared": True})
    assert r.status_code == 403 and "lead" in r.json()["detail"]
    assert ann.client.post("/api/views", json={"name": "x", "filters": {"nope": 1}}).status_code == 422
    assert ann.client.post("/api/views", json={"name": "x", "sort": "random"}).status_code == 422
    r = lead.client.post("/api/views", json={"name": "Big refunds", "filters": {"q": "refund"}, "shared": True})
    assert r.status_code == 201 and r.json()["shared"] is True
    shared_id = r.json()["id"]
    assert {v["name"] for v in ann.client.get("/api/views").json()} == {"My urgent", "Big refunds"}
    assert {v["name"] for v in bob.client.get("/api/views").json()} == {"Big refunds"}  # not Ann's personal view
    assert bob.client.delete(f"/api/views/{mine['id']}").status_code == 404
    assert ann.client.delete(f"/api/views/{shared_id}").status_code == 403
    assert ann.client.delete(f"/api/views/{mine['id']}").status_code == 204
    assert lead.client.delete(f"/api/views/{shared_id}").status_code == 204
    assert ann.client.get("/api/views").json() == []


def test_saved_view_renders_in_the_queue(person, web_client) -> None:  # type: ignore[no-untyped-def]
    from tests.web._helpers import HTML

    c, csrf = web_client("agent")
    r = c.post("/queue/views", data={"csrf_token": csrf, "view_name": "Urgent only",
                                     "back": "/queue?view=all&priority=urgent&sort=priority"},
               headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and "priority=urgent" in r.headers["location"]
    page = c.get(r.headers["location"], headers=HTML).text
    assert "Urgent only" in page and 'aria-current="page">Urgent only' in page
