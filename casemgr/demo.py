"""`casemgr demo`: seed realistic demo data (users per role, 300+ cases across both types and every stage)."""

from __future__ import annotations

import gzip
import json
import random
import re
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import func, select

from casemgr.cases import service as cases
from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseCreate, CasePatch, PartyIn
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.db import write_session
from casemgr.limits import CASE_SUBJECT_CHARS, FIELD_LABEL_CHARS, PARTY_NAME_CHARS
from casemgr.sla.clock import due_at
from casemgr.users import service as users

DEMO_ROLES = ["agent", "lead", "governance", "reviewer", "admin"]
# Four eyes (issue 21): a policy change drafted by one governance lead is approved by another; a second reviewer
# gives the blind second opinions of the double-reviewed slice (inter-reviewer agreement).
DEMO_EXTRA_USERS = {"governance2": "governance", "reviewer2": "reviewer"}
FIRST = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Drew", "Robin"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Patel", "Murphy", "Silva", "Kowalski", "Nguyen", "Brown"]

# Paths a case may have taken, by how far it got; each demo case follows one prefix of one path.
COMPLAINT_PATHS = [
    ["intake", "triage", "investigation", "resolution", "feedback", "closed"],
    ["intake", "triage", "investigation", "waiting_on_customer", "resolution", "feedback", "closed"],
    ["intake", "triage", "resolution", "feedback", "closed"],
]
CONTRACT_PATHS = [
    ["request", "drafting", "negotiation", "approval", "signature", "active", "renewal", "renewed"],
    ["request", "drafting", "approval", "signature", "active", "renewal", "expired"],
    ["request", "drafting", "negotiation", "approval", "signature", "active"],
]


def load_demo_records() -> list[dict[str, Any]]:
    data = resources.files("casemgr.demo_data").joinpath("demo.jsonl.gz").read_bytes()
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line.strip()]


def _subject_from(text: str, n: int = 8) -> str:
    words = re.findall(r"[a-z0-9']+", text.lower())[:n]
    return (" ".join(words).capitalize() or "Complaint")[:120]


def seed_users() -> dict[str, str]:
    passwords: dict[str, str] = {}
    with write_session() as session:
        for name, role in [(r, r) for r in DEMO_ROLES] + list(DEMO_EXTRA_USERS.items()):
            if users.get_user_by_name(session, name) is None:
                pw = users.generate_password()
                roles = [role] + (["legal", "finance"] if role == "agent" else [])
                users.create_user(session, name, pw, roles, actor="system:demo", display_name=f"Demo {name}")
                passwords[name] = pw
    return passwords


def seed_cases(n_complaints: int = 250, n_contracts: int = 80, seed: int = 42) -> int:
    rng = random.Random(seed)
    records = load_demo_records()
    complaints = [r for r in records if r["kind"] == "complaint"][:n_complaints]
    contracts = [r for r in records if r["kind"] == "contract"][:n_contracts]
    registry = get_registry()
    start = now() - timedelta(days=90)
    created = 0
    causes = random.Random(seed * 31 + 7)  # its own stream: the cases themselves stay as they were
    jobs: list[tuple[str, dict[str, Any]]] = [("complaint", r) for r in complaints] + [("contract", r) for r in contracts]
    rng.shuffle(jobs)
    for i, (kind, rec) in enumerate(jobs):
        t0 = start + timedelta(minutes=rng.randint(0, 89 * 24 * 60))
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if kind == "complaint":
            paths = COMPLAINT_PATHS
            data = CaseCreate(
                case_type="complaint", subject=_subject_from(rec["text"]), description=rec["text"], channel="demo",
                party=PartyIn(name=name, email=f"{name.lower().replace(' ', '.')}{i}@example.com",
                              tier=rng.choice(["standard"] * 6 + ["gold"] * 3 + ["platinum"])),
                amount=round(rng.choice([0, 0, 25, 80, 150, 420, 1200, 5600, 15000]) * rng.random(), 2) or None,
                fields={"account_id": f"AC{rng.randint(10**7, 10**8 - 1)}"},
            )
        else:
            paths = CONTRACT_PATHS
            parties = (rec.get("parties") or "").split(";")
            counterparty = (parties[0].split("(")[0].strip() or "Counterparty")[:PARTY_NAME_CHARS]
            data = CaseCreate(
                case_type="contract", subject=str(rec.get("title") or "Contract")[:CASE_SUBJECT_CHARS].title(),
                description=rec["text"], channel="demo",
                party=PartyIn(name=counterparty, organisation=counterparty),
                amount=float(rng.choice([5000, 12000, 25000, 80000, 250000])),
                fields={"counterparty": counterparty, "contract_kind": str(rec.get("title") or "")[:FIELD_LABEL_CHARS],
                        "governing_law": (rec.get("governing_law") or None) and str(rec["governing_law"])[:200]},
            )
            if data.fields.get("governing_law") is None:
                data.fields.pop("governing_law")
        path = rng.choice(paths)
        depth = rng.randint(1, len(path))
        t0, times = plan_times(rng, registry.get(kind), path[:depth], t0,
                               rule_hours=_rule_hours(data, path[:depth], rec.get("product")))
        with write_session() as session:
            case = cases.create_case(session, data, actor="system:demo", created_at=t0)
            for stage, t in zip(path[1:depth], times, strict=True):
                if kind == "complaint" and stage == "triage" and rec.get("product"):
                    case.category = rec["product"]
                    case.fields = {**case.fields, "category": rec["product"]}
                code = resolution_code(causes, rec.get("product"), t) if kind == "complaint" and stage == "closed" else None
                case = cases.transition(session, case.id, stage, case.version, actor=rng.choice(
                    ["user:agent", "user:agent", "user:lead"]), at=t, resolution_code=code)
        created += 1
    assert registry  # registry validated before seeding
    return created


# Root causes agents confirm when a demo complaint closes (issue 22), weighted per product, so the dashboard's
# root-cause section has recurring causes to show. In the last two weeks system errors rise: a top mover.
CAUSES_BY_PRODUCT = {
    "credit_reporting": {"credit_report_error": 6, "third_party": 2, "process_delay": 2, "policy_explained": 1},
    "credit_card": {"billing_error": 4, "unauthorised_transaction": 3, "communication_gap": 2, "policy_explained": 2},
    "debt_collection": {"third_party": 4, "communication_gap": 3, "staff_conduct": 2, "policy_explained": 1},
    "mortgages_and_loans": {"process_delay": 4, "billing_error": 2, "communication_gap": 2, "system_error": 1},
    "retail_banking": {"billing_error": 3, "unauthorised_transaction": 2, "system_error": 2, "process_delay": 2},
}
OTHER_CAUSES = {"communication_gap": 2, "policy_explained": 2, "process_delay": 1, "withdrawn": 1}


def resolution_code(rng: random.Random, product: str | None, closed_at: datetime) -> str:
    weights = dict(CAUSES_BY_PRODUCT.get(product or "", OTHER_CAUSES))
    if closed_at >= now() - timedelta(days=14):
        weights["system_error"] = weights.get("system_error", 0) + 4
    codes = sorted(weights)
    return rng.choices(codes, weights=[weights[c] for c in codes])[0]


# Where an open demo case's SLA due time lands relative to now (share, remaining time in hours: low, high).
# A backlog agents recognise: most on track, some due today, some at risk, a few breached.
DUE_SPREAD = (
    (0.07, (-72.0, -0.5)),  # breached: overdue by half an hour to three days
    (0.13, (0.25, 2.0)),  # at risk: due within two hours
    (0.15, (2.0, 8.0)),  # due later today or tomorrow morning
    (0.65, (8.0, 240.0)),  # on track
)


# The two processes shipped as data (issue 22): a few cases each, spread over their stages. Onboarding cases
# that reach "completed" first complete their handoff tasks (a case cannot close while one is open).
ONBOARDING_PATHS = [["hr_setup", "it_setup", "first_week", "payroll", "completed"], ["hr_setup", "cancelled"]]
INVOICE_PATHS = [["received", "po_match", "approval", "posting", "payment", "paid"],
                 ["received", "po_match", "received"], ["received", "rejected"]]
JOBS = ["Analyst", "Engineer", "Account manager", "Designer", "Support agent"]
VENDORS = ["Acme Supplies", "Northwind Traders", "Globex Facilities", "Initech Software", "Umbrella Logistics"]


def _process_data(kind: str, rng: random.Random, i: int, name: str) -> CaseCreate:
    if kind == "onboarding":
        job = rng.choice(JOBS)
        start = (now() + timedelta(days=rng.randint(3, 40))).date().isoformat()
        return CaseCreate(case_type="onboarding", subject=f"New starter: {name}, {job}", channel="demo",
                          description=f"{name} joins as {job} on {start}.",
                          fields={"employee_name": name, "job_title": job, "start_date": start,
                                  "employment_type": rng.choice(["permanent", "permanent", "fixed_term"]),
                                  "equipment": rng.choice(["laptop_standard", "laptop_developer"])})
    vendor = rng.choice(VENDORS)
    amount = round(rng.choice([180, 950, 4200, 9800, 14500, 120000]) * rng.uniform(0.8, 1.2), 2)
    fields: dict[str, Any] = {"vendor": vendor, "invoice_number": f"{vendor[:3].upper()}-{1000 + i}",
                              "currency": "EUR"}
    if rng.random() < 0.8:
        fields["po_number"] = f"PO-{rng.randint(40000, 49999)}"
    return CaseCreate(case_type="invoice", subject=f"Invoice {fields['invoice_number']} from {vendor}",
                      channel="demo", amount=amount, fields=fields,
                      party=PartyIn(name=vendor, organisation=vendor))


def seed_process_cases(rng: random.Random, start: datetime, per_type: int = 12) -> int:
    """Demo cases of the onboarding and invoice processes (only the types case-types.yaml defines)."""
    registry = get_registry()
    created = 0
    for kind, paths in (("onboarding", ONBOARDING_PATHS), ("invoice", INVOICE_PATHS)):
        if kind not in registry.case_types:
            continue
        for i in range(per_type):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            data = _process_data(kind, rng, i, name)
            path = paths[i % len(paths)]
            depth = rng.randint(1, len(path))
            t = start + timedelta(days=60, minutes=rng.randint(0, 25 * 24 * 60))
            with write_session() as session:
                case = cases.create_case(session, data, actor="system:demo", created_at=t)
                for stage in path[1:depth]:
                    t = t + timedelta(hours=rng.uniform(2, 30))
                    if stage == "received" and kind == "invoice":  # PO match found an exception
                        reason = "no_po" if "po_number" not in case.fields else "over_tolerance"
                        case = cases.update_case(session, case.id, CasePatch(  # type: ignore[arg-type]
                            version=case.version, fields={**case.fields, "exception_reason": reason}), "user:agent")
                    if registry.get(kind).stage(stage).final:  # type: ignore[union-attr]
                        for task in cases.open_handoff_tasks(session, case.id):
                            cases.complete_task(session, case.id, task.id, "user:agent")  # type: ignore[arg-type]
                    case = cases.transition(session, case.id, stage, case.version,  # type: ignore[arg-type]
                                            actor="user:agent", at=min(t, now()))
            created += 1
    return created


def _remaining_hours(rng: random.Random) -> float:
    r = rng.random()
    for share, (low, high) in DUE_SPREAD:
        if r < share:
            return rng.uniform(low, high)
        r -= share
    return rng.uniform(8.0, 240.0)


def _rule_hours(data: CaseCreate, stages: list[str], product: str | None) -> float | None:
    """The SLA target the routing rules would set in the last stage (a rule may shorten the stage's own)."""
    from casemgr.cases.routing import evaluate_rules

    probe = cases.plan_case(data, "system:demo").case
    probe.stage = stages[-1]
    if data.case_type == "complaint" and "triage" in stages[1:] and product:
        probe.category = product
        probe.fields = {**probe.fields, "category": product}
    hours = evaluate_rules(probe).get("sla_hours")
    return float(hours) if hours else None


def plan_times(rng: random.Random, ct: Any, stages: list[str], t0: datetime, *,
               rule_hours: float | None = None) -> tuple[datetime, list[datetime]]:
    """Creation time and one time per transition (stages[1:]), all before now.

    A case that ends in an open stage with an SLA target is placed so its due time falls where DUE_SPREAD says,
    relative to *now* (found by bisection on the business calendar), so `casemgr demo` shows what a real
    backlog shows today instead of a wall of cases breached months ago. Closed cases keep their random past.
    """
    gaps = [timedelta(hours=rng.uniform(1, 30) * (3 if s in ("investigation", "negotiation") else 1))
            for s in stages[1:]]
    at = now()
    last = ct.stage(stages[-1])
    if last is not None and not last.final:
        if last.sla is not None and not last.waits_on_customer:
            want = at + timedelta(hours=_remaining_hours(rng))
            hours = min(last.sla.hours, rule_hours) if rule_hours else last.sla.hours
            lo, hi = at - timedelta(days=60), at - timedelta(minutes=1)
            for _ in range(40):  # due_at is monotonic in the start time
                mid = lo + (hi - lo) / 2
                if due_at(mid, hours, last.sla.business_hours) < want:
                    lo = mid
                else:
                    hi = mid
            t_last = lo
        else:
            t_last = at - timedelta(hours=rng.uniform(1, 24 * 20))  # paused or untimed: some time ago
        t0 = t_last - sum(gaps, timedelta())
    else:
        overshoot = t0 + sum(gaps, timedelta()) - (at - timedelta(hours=1))
        if overshoot > timedelta():
            t0 -= overshoot
    times, t = [], t0
    for g in gaps:
        t += g
        times.append(t)
    return t0, times


def queue_ai_for_open_cases() -> int:
    """Queue AI enrichment of the open demo cases; the worker (embedded in `casemgr serve` on SQLite) runs it."""
    from casemgr.jobs.service import enqueue

    with write_session() as session:
        ids = session.execute(select(Case.id).where(Case.status == CaseStatus.OPEN, Case.ai_status == "pending")).scalars().all()
        for cid in ids:
            enqueue(session, "ai.enrich", {"case_id": cid, "attempt": 0}, idempotency_key=f"ai.enrich:{cid}:0")
    return len(ids)


def demo_api_key() -> str | None:
    """An API key for the demo agent, so `curl -H "X-API-Key: …" /api/cases` works right after `make run`."""
    with write_session() as session:
        user = users.get_user_by_name(session, "agent")
        if user is None:
            return None
        _, secret = users.create_api_key(session, "demo-agent", user.id, actor="system:demo")
    return secret


def run_demo(reset: bool = False) -> dict[str, Any]:
    with write_session() as session:
        existing = session.execute(select(func.count()).select_from(Case)).scalar_one()
    passwords = seed_users()
    created = 0
    queued = 0
    if existing == 0 or reset:
        created = seed_cases()
        created += seed_process_cases(random.Random(7), now() - timedelta(days=90))
        queued = queue_ai_for_open_cases()
    key = demo_api_key() if passwords else None
    return {"users": passwords, "cases_created": created, "cases_existing": existing, "ai_jobs_queued": queued,
            "api_key": key}
