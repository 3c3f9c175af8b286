"""Concrete next steps for a complaint, from its intent, its facts and the case type's SOPs (issue 17).

Stage moves ("triage") are not next steps. An agent needs to know what to do: request the statement
for the disputed charge, open a chargeback, send the debt-validation letter. Steps come from a playbook
per intent (written from the CFPB complaint handling practice and Reg E / Reg Z / FDCPA / FCRA duties,
not mined from data), are filled with the case's facts, and an imminent hard deadline found in the text
(a foreclosure sale, a garnishment, a court date) turns into an escalation step first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from dateutil import parser as dateparser

PLAYBOOK: dict[str, list[tuple[str, str | None]]] = {
    "dispute_charge": [
        ("Request the statement and receipt for the disputed charge{amount}", "sop/complaint-investigation.md"),
        ("Open a chargeback with the card network within the dispute window", "sop/complaint-investigation.md"),
        ("Give the customer a provisional credit while the dispute is open (Reg E/Reg Z timelines)", None),
    ],
    "fraud_identity_theft": [
        ("Block the affected card or account and issue a new one", None),
        ("Ask the customer for an identity-theft report (FTC / police) and list the unauthorized items", None),
        ("Reverse the unauthorized charges{amount} and remove related fees", "sop/complaint-resolution.md"),
        ("Ask the credit bureaus to block fraudulent tradelines (FCRA 605B)", None),
    ],
    "fix_credit_report": [
        ("Pull the tradeline history and compare it with the disputed entries", "sop/complaint-investigation.md"),
        ("Send a correction to the credit bureaus (e-OSCAR) and confirm it to the customer", None),
        ("Answer the dispute within 30 days (FCRA)", "sop/complaint-resolution.md"),
    ],
    "debt_validation": [
        ("Send the debt-validation letter (amount, creditor, itemisation) to the customer", None),
        ("Pause collection during the dispute until the debt is validated (FDCPA 809(b))", None),
        ("Check the account's chain of title and the amount{amount} against the original creditor's records",
         "sop/complaint-investigation.md"),
    ],
    "stop_collector_conduct": [
        ("Record the customer's cease-contact request and stop calls to third parties", None),
        ("Review call logs for FDCPA violations (time of day, frequency, threats)", "sop/complaint-investigation.md"),
        ("Confirm in writing how and when the collector may contact the customer", "sop/complaint-resolution.md"),
    ],
    "refund_fee_reversal": [
        ("Review the fee{amount} against the account agreement and the fee schedule", "sop/complaint-investigation.md"),
        ("Reverse the fee if it was charged in error or waive it as goodwill, and tell the customer", None),
    ],
    "hardship_modification": [
        ("Send the hardship / loss-mitigation application and list the documents needed", None),
        ("Put a hold on collection or foreclosure activity while the application is reviewed", None),
        ("Review forbearance, repayment plan and modification options", "sop/complaint-investigation.md"),
    ],
    "payment_problem": [
        ("Trace the payment{amount} (date, channel, confirmation number) and where it was applied",
         "sop/complaint-investigation.md"),
        ("Re-apply the payment correctly and reverse the late fees and interest it caused", None),
        ("Correct any late payment reported to the bureaus", None),
    ],
    "account_access": [
        ("Check the hold or freeze reason on the account and the release date", "sop/complaint-investigation.md"),
        ("Release the funds or tell the customer exactly which documents release them", None),
    ],
    "information_request": [
        ("Answer the customer's question in writing with the requested documents", "sop/complaint-resolution.md"),
    ],
    "other": [
        ("Call the customer to clarify what outcome they want", "sop/complaint-triage.md"),
    ],
}

_DEADLINE_EVENTS = re.compile(
    r"(foreclosure sale|sheriff'?s? sale|auction|eviction|garnish\w*|repossess\w*|court date|hearing|levy)",
    re.IGNORECASE,
)
_DATE_NEAR = re.compile(
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2}"
    r"(?:st|nd|rd|th)?(?:,?\s+\d{4})?)",
    re.IGNORECASE,
)


@dataclass
class NextStep:
    text: str
    sop: str | None = None
    escalate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "sop": self.sop, "escalate": self.escalate}


def _imminent_deadline(text: str, today: date, within_days: int = 14) -> tuple[str, int] | None:
    """A hard-deadline event with a date within `within_days`, e.g. ('foreclosure sale', 6)."""
    for m in _DEADLINE_EVENTS.finditer(text):
        window = text[max(0, m.start() - 80): m.end() + 80]
        for d in _DATE_NEAR.finditer(window):
            try:
                when = dateparser.parse(d.group(0), default=dateparser.parse(today.isoformat())).date()
            except (ValueError, OverflowError):
                continue
            days = (when - today).days
            if 0 <= days <= within_days:
                return m.group(0).lower(), days
    return None


def next_steps(intent: str | None, text: str, today: date, *, amount: float | str | None = None,
               sop_exists: Any = None) -> list[NextStep]:
    """Steps for the agent, most urgent first; SOP links only where the SOP file exists."""
    steps: list[NextStep] = []
    hit = _imminent_deadline(text, today)
    if hit:
        event, days = hit
        steps.append(NextStep(f"Escalate: {event} date in {days} day{'s' if days != 1 else ''}", None, True))
    amount_txt = f" ({amount})" if amount not in (None, "") else ""
    for template, sop in PLAYBOOK.get(intent or "other", PLAYBOOK["other"]):
        if sop and sop_exists is not None and not sop_exists(sop):
            sop = None
        steps.append(NextStep(template.format(amount=amount_txt), sop))
    return steps
