"""The decision-kind registry: one class per kind, the policy's known kinds come from it, applying is one change."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.db import write_session
from casemgr.governance import kinds, service
from casemgr.governance import policy as policy_mod
from casemgr.governance.decide import AIOutput, CaseFacts, invalid_reason
from casemgr.governance.kinds.base import StageMove

from .util import base_policy_data, new_case, policy

EXAMPLES = {
    "classify": {"urgency": "high"}, "set_priority": {"priority": "urgent"}, "route_queue": {"queue": "billing"},
    "assign": {"assignee": "ann"}, "draft_reply": {"text": "Hello"}, "request_information": {"text": "IBAN?"},
    "close_case": {"to_stage": "resolved"}, "approve_refund": {"amount": 12.5},
    "approve_contract": {"to_stage": "signature"}, "summarize": {"summary": "s"}, "extract_contract": {},
    "advance_stage": {"to_stage": "investigation"},
}


def test_every_kind_is_one_registered_class_with_a_value_schema() -> None:
    names = [k.name for k in kinds.all_kinds()]
    assert sorted(names) == sorted(EXAMPLES)  # a new kind file needs an example here
    for kind in kinds.all_kinds():
        assert issubclass(kind.value_schema, BaseModel)
        kind.value_schema.model_validate(EXAMPLES[kind.name])
        assert kinds.get(kind.name) is kind
    with pytest.raises(ValidationError):
        kinds.get("approve_refund").value_schema.model_validate({"amount": "lots"})  # type: ignore[union-attr]


def test_the_policy_knows_exactly_the_registered_kinds_and_requires_the_required_ones() -> None:
    assert set(policy_mod.DECISION_KINDS) == set(kinds.names())
    assert set(policy_mod.REQUIRED_KINDS) == {k.name for k in kinds.all_kinds() if k.required}
    shipped = base_policy_data()["decisions"]
    assert set(policy_mod.REQUIRED_KINDS) <= set(shipped) <= set(kinds.names())


def test_stage_moves_name_a_move_most_specific_first() -> None:
    class Contract:
        case_type, stage = "contract", "approval"

    moves = kinds.stage_moves()
    assert all(isinstance(k, StageMove) for k in moves) and moves[0].name == "approve_contract"
    pick = [k.name for k in moves if k.proposes(Contract(), "signature", False)]
    assert pick[0] == "approve_contract"
    assert next(k.name for k in moves if k.proposes(Contract(), "closed", True)) == "close_case"


def test_validation_against_the_case_is_the_kinds_own_and_pure() -> None:
    facts = CaseFacts(id=1, case_type="complaint", stage="triage", transitions=("investigation", "resolved"),
                      final_stages=("resolved",), queues=("billing",))
    assert invalid_reason(facts, AIOutput("set_priority", {"priority": "asap"}, 0.9)) == \
        "priority 'asap' is not one of low, normal, high, urgent"
    assert invalid_reason(facts, AIOutput("advance_stage", {"to_stage": "resolved"}, 0.9)) == \
        "closing a case is the close_case decision"
    assert invalid_reason(facts, AIOutput("close_case", {"to_stage": "resolved"}, 0.9)) is None
    assert invalid_reason(facts, AIOutput("teleport", {}, 0.9)) == "unknown decision kind 'teleport'"


def test_an_applied_kind_is_one_case_change_with_one_audit_event() -> None:
    out = AIOutput(kind="set_priority", value={"priority": "urgent"}, confidence=0.99, model_version="m-2")
    with write_session() as s:
        case = new_case(s)
        v0, cid = case.version, case.id
        row = service.record_decision(s, case, out, policy=policy())
        assert row.outcome == "applied" and row.previous == {"priority": "normal"}
        assert case.version == v0 + 1
        events = list(s.execute(select(AuditEvent).where(AuditEvent.case_id == cid,
                                                         AuditEvent.entity == f"ai_decision:{row.id}")).scalars())
        assert [e.action for e in events] == ["ai.applied"]
        assert events[0].after == {"priority": "urgent", "version": v0 + 1, "kind": "set_priority"}
