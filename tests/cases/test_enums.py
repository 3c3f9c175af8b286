"""The cases vocabulary lists its values in member order, computed once per enum (routing and every AI decision
ask for them on the hot path, issue 23)."""

from __future__ import annotations

from casemgr.cases.enums import CaseStatus, Priority, Sentiment, Urgency


def test_values_are_the_members_in_order_and_remembered() -> None:
    for enum in (CaseStatus, Priority, Urgency, Sentiment):
        assert enum.values() == tuple(m.value for m in enum)
        assert enum.values() is enum.values()  # one tuple per enum, not a new one per call
    assert CaseStatus.values() == ("open", "closed")  # each enum its own list, whichever was asked first
