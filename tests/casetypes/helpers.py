"""Shared steps of the versioned-process tests: publish a case-types candidate through four eyes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casemgr.casetypes import lifecycle
from casemgr.casetypes.documents import CASE_TYPES_FILE
from casemgr.db import write_session
from casemgr.documents import changes

POLICIES = Path(__file__).resolve().parents[2] / "policies"
LEADS = {"roles": {"governance"}, "user_id": None}


def shipped_text() -> str:
    return (POLICIES / CASE_TYPES_FILE).read_text(encoding="utf-8")


def edited(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# The complaint's intake SLA 4 h -> 2 h and triage 8 h -> 6 h; the feedback stage removed (resolution closes).
V2_EDITS = (
    ("        sla: {hours: 4}\n        tasks:\n          - {name: Acknowledge the customer",
     "        sla: {hours: 2}\n        tasks:\n          - {name: Acknowledge the customer"),
    ("        sla: {hours: 8}\n        tasks:\n          - {name: Confirm category",
     "        sla: {hours: 6}\n        tasks:\n          - {name: Confirm category"),
    ("        transitions: [feedback, investigation]\n", "        transitions: [closed, investigation]\n"),
    ("      - name: feedback\n        owner_role: agent\n        sla: {hours: 80, business_hours: true}\n"
     "        tasks:\n          - {name: Ask for customer feedback, role: agent, sop: sop/complaint-feedback.md}\n"
     "        transitions: [closed]\n", ""),
)


def publish(kind: str, files: dict[str, str], reason: str = "shorter complaint SLAs") -> dict[str, Any]:
    """Alice drafts, Bob approves (four eyes, as the default settings require)."""
    with write_session() as s:
        r = lifecycle.request_publish(s, kind, files, actor="user:alice", reason=reason, **LEADS)  # type: ignore[arg-type]
        assert r["status"] == "pending"
        _, published = changes.approve(s, r["request"]["id"], actor="user:bob", **LEADS)  # type: ignore[arg-type]
    with write_session() as s:
        lifecycle.refresh_caches(s)
    return {"version": published.version, "request": r["request"]["id"]}


def publish_v2() -> str:
    return str(publish("case-types", {CASE_TYPES_FILE: edited(shipped_text(), *V2_EDITS)})["version"])
