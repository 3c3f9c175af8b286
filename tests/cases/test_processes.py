"""Issue 22: the shipped onboarding and invoice-approval processes, as data (policies/case-types.yaml,
policies/rules/onboarding.yaml and invoices.yaml, SOPs in policies/sop/)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from casemgr.cases import service
from casemgr.cases.enums import CaseStatus, TaskStatus
from casemgr.cases.models import Case, Task
from casemgr.cases.schemas import CaseCreate, CasePatch
from casemgr.casetypes.registry import get_registry
from casemgr.db import read_session, write_session
from casemgr.errors import InvalidTransition

ACTOR = "user:tester"


def _move(case_id: int, to: str) -> Case:
    with write_session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return service.transition(s, case_id, to, case.version, ACTOR)


def _tasks(case_id: int) -> list[Task]:
    with read_session() as s:
        return list(s.execute(select(Task).where(Task.case_id == case_id).order_by(Task.id)).scalars())


def _case(case_id: int) -> Case:
    with read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def test_every_step_of_the_shipped_processes_has_an_owner_sla_tasks_and_a_real_sop() -> None:
    reg = get_registry()
    for name in ("onboarding", "invoice"):
        ct = reg.get(name)
        for sd in ct.stages:
            if sd.final:
                continue
            assert sd.owner_role in reg.org.role_names and sd.sla is not None and sd.tasks, (name, sd.name)
            for t in sd.tasks:
                text = reg.sop_text(t.sop)
                assert text and "## Work instructions" in text, t.sop
    owners = [sd.owner_role for sd in reg.get("onboarding").stages if not sd.final]
    assert owners == ["hr", "it", "manager", "payroll"]


def test_onboarding_cannot_close_while_a_handoff_task_is_open() -> None:
    with write_session() as s:
        case_id = service.create_case(s, CaseCreate(case_type="onboarding", subject="New starter: Kim Park",
                                                     fields={"employee_name": "Kim Park", "start_date": "2027-01-04"}),
                                      ACTOR).id
    assert case_id is not None
    assert _case(case_id).queue == "onboarding-hr" and _case(case_id).owner_role == "hr"
    for stage, queue in (("it_setup", "onboarding-it"), ("first_week", "onboarding-manager"),
                         ("payroll", "onboarding-payroll")):
        case = _move(case_id, stage)
        assert case.queue == queue  # each step lands in its owner role's queue (rules data)
    handoffs = [t for t in _tasks(case_id) if t.kind == "handoff"]
    # Handoffs survive the stage they were opened in; ordinary stage tasks of a left stage are cancelled.
    assert len(handoffs) == 3 and all(t.status == TaskStatus.OPEN for t in handoffs)
    assert {t.role for t in handoffs} == {"it", "manager", "payroll"}
    left = [(t.name, t.status, t.source) for t in _tasks(case_id)
            if t.kind == "task" and t.stage == "hr_setup" and t.source == "stage"]
    assert left and all(status == TaskStatus.CANCELLED for _, status, _ in left), left

    with pytest.raises(InvalidTransition, match="handoff task is open: Handoff to IT"):
        _move(case_id, "completed")
    assert _case(case_id).status == CaseStatus.OPEN and _case(case_id).stage == "payroll"

    for t in handoffs[:2]:
        with write_session() as s:
            service.complete_task(s, case_id, t.id, ACTOR)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition, match="Handoff to payroll"):
        _move(case_id, "completed")
    with write_session() as s:
        service.complete_task(s, case_id, handoffs[2].id, ACTOR)  # type: ignore[arg-type]
    assert _move(case_id, "completed").status == CaseStatus.CLOSED


def test_onboarding_handoff_also_blocks_closing_over_http(client, api_key) -> None:  # type: ignore[no-untyped-def]
    h = {"X-API-Key": api_key("agent")}
    r = client.post("/api/cases", headers=h, json={"case_type": "onboarding", "subject": "New starter"})
    assert r.status_code == 201, r.text
    case = r.json()
    r = client.post(f"/api/cases/{case['id']}/transitions", headers=h,
                    json={"to_stage": "cancelled", "version": case["version"]})
    assert r.status_code == 409 and "handoff task is open" in r.json()["detail"]


def _invoice(amount: float, **fields: object) -> int:
    with write_session() as s:
        case = service.create_case(s, CaseCreate(case_type="invoice", subject=f"Invoice {amount}", amount=amount,
                                                 fields={"invoice_number": "INV-77", "vendor": "Acme", **fields}),
                                   ACTOR)
        assert case.id is not None
        return case.id


@pytest.mark.parametrize("reason", ["no_po", "over_tolerance", "duplicate_invoice"])
def test_invoice_exceptions_are_routed_back_with_a_reason_code(reason: str) -> None:
    case_id = _invoice(900.0, po_number="PO-1")
    _move(case_id, "po_match")
    assert _case(case_id).queue == "invoices-intake"
    # PO match finds the exception: the reason code goes on the case and the case goes back to received.
    with write_session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        service.update_case(s, case_id, CasePatch(version=case.version, fields={"exception_reason": reason}), ACTOR)
    case = _move(case_id, "received")
    assert case.queue == "invoices-exceptions" and case.owner_role == "accounts_payable"
    assert case.rules_result and "invoice-exception" in str(case.rules_result)
    assert any(t.name == "Resolve the invoice exception" and t.status == TaskStatus.OPEN for t in _tasks(case_id))


def test_unknown_reason_code_is_refused() -> None:
    case_id = _invoice(900.0)
    with write_session() as s, pytest.raises(Exception, match="exception_reason"):
        case = s.get(Case, case_id)
        assert case is not None
        service.update_case(s, case_id, CasePatch(version=case.version, fields={"exception_reason": "late"}), ACTOR)


@pytest.mark.parametrize("amount, queue, owner, lead_approval", [
    (5_000.0, "invoices-approval", "manager", False),
    (10_000.0, "invoices-approval", "manager", False),
    (10_000.01, "invoices-finance-approval", "finance", False),
    (150_000.0, "invoices-finance-approval", "finance", True),
])
def test_invoice_approval_limits_per_role_are_rules_data(amount: float, queue: str, owner: str,
                                                         lead_approval: bool) -> None:
    case_id = _invoice(amount, po_number="PO-9")
    _move(case_id, "po_match")
    case = _move(case_id, "approval")
    assert (case.queue, case.owner_role) == (queue, owner)
    lead = [t for t in _tasks(case_id) if t.role == "lead" and t.kind == "approval"]
    assert bool(lead) == lead_approval
