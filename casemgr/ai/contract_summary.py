"""A contract's summary built from its extracted fields, not sentences picked from the text (issue 17).

Legal and finance read a contract case for the same things every time: who, what kind, how long, what it is
worth, how it renews and how to stop that, which law, and which risky clauses it has. Sentence extraction
picked definitions; a structured summary states those facts in a fixed order, each traceable to a field.
"""

from __future__ import annotations

from typing import Any

from casemgr.ai.schemas import ContractFacts, KeyFacts, Summary

# Clauses that change a contract's risk for us; the others (e.g. Renewal Term) are reported as terms.
RISKY = ("Uncapped Liability", "Non-Compete", "Exclusivity", "Change Of Control", "Anti-Assignment",
         "Termination For Convenience")


def contract_summary(facts: ContractFacts, amount: Any = None) -> Summary:
    parties = [p for p in facts.parties if p][:4]
    kind = facts.agreement.type or facts.agreement.title
    first = []
    if kind:
        first.append(str(kind))
    if parties:
        first.append("between " + (", ".join(parties[:-1]) + " and " + parties[-1] if len(parties) > 1 else parties[0]))
    term = []
    if facts.effective_date or facts.agreement_date:
        term.append(f"effective {facts.effective_date or facts.agreement_date}")
    if facts.expiration_date:
        term.append(f"expires {facts.expiration_date}")
    if facts.renewal_term:
        term.append(f"renews {facts.renewal_term}")
    if facts.notice_period_to_terminate_renewal:
        term.append(f"notice to stop renewal {facts.notice_period_to_terminate_renewal}")
    if amount not in (None, ""):
        term.append(f"value {amount}")
    if facts.governing_law:
        term.append(f"governed by {facts.governing_law} law")
    s1 = (" ".join(first) or "Contract") + (": " + "; ".join(term) if term else "") + "."
    risky = [name for name in RISKY if (c := facts.clauses.get(name)) is not None and c.present]
    cap = facts.clauses.get("Cap On Liability")
    s2 = ("Risky clauses: " + ", ".join(risky) + "." if risky else "No risky clause found.")
    if cap is not None and cap.present:
        s2 += " Liability is capped."
    sentences = [s1, s2]
    return Summary(summary=" ".join(sentences), sentences=sentences,
                   key_facts=KeyFacts(parties=parties, dates=[d for d in (facts.effective_date, facts.expiration_date) if d]))
