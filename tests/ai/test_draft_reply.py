"""The offline reply draft (issues 17 and 20): from the case type's macros and the stage's SOPs, filled with the
case facts, chosen by intent; and the edit distance that says how much an agent changed a draft."""

from __future__ import annotations

import pytest

from casemgr.ai.drafting.distance import edit_distance, levenshtein
from casemgr.ai.drafting.local import choose_macro, draft_local
from casemgr.ai.drafting.phrases import PHRASES, phrases_for
from casemgr.ai.providers import LocalProvider
from casemgr.ai.schemas import DraftContext, MacroText
from casemgr.ai.service import run_capability
from casemgr.ai.targets import INTENTS
from casemgr.casetypes.registry import get_registry
from casemgr.macros.loader import load_all

SUBJECT = "Charged twice for my groceries at FreshMart"


def ctx(case_type: str = "complaint", stage: str = "intake", **kw: object) -> DraftContext:
    reg = get_registry()
    ct = reg.get(case_type)
    sd = ct.stage(stage)
    assert sd is not None
    sops = {t.sop: reg.sop_text(t.sop) or "" for t in sd.tasks if t.sop}
    macros = [MacroText(name=m.name, title=m.title, stages=m.stages, reply=m.reply)
              for m in load_all().values() if case_type in m.case_types]
    base: dict[str, object] = {
        "case_type": case_type, "stage": stage, "reference": "CMP-000042", "subject": SUBJECT,
        "customer_name": "Jane Doe", "agent_name": "Ann Agent", "received": "03 December 2026",
        "due": "05 December 2026", "fields": {f.name: None for f in ct.fields}, "macros": macros, "sops": sops}
    base.update(kw)
    return DraftContext.model_validate(base)


def test_every_intent_has_customer_words() -> None:
    assert set(PHRASES) == set(INTENTS)
    assert phrases_for(None) is None and phrases_for("make_coffee") is None


@pytest.mark.parametrize("intent", INTENTS)
def test_a_complaint_draft_per_intent_at_intake(intent: str) -> None:
    d = draft_local(ctx(intent=intent, intent_confidence=0.8, category="credit_card", amounts=["$35.00"],
                        dates=["March 3, 2024"]))
    text = d.text
    assert text.startswith("Dear Jane Doe,\n\n") and text.rstrip().endswith("Kind regards,\nAnn Agent")
    assert text.count("Kind regards") == 1 and text.count("Dear ") == 1
    assert SUBJECT.lower() not in text.lower() and "FreshMart" not in text  # never the subject
    assert "CMP-000042" in text  # the reference, from the acknowledgement macro
    understood = PHRASES[intent].understood.split("{")[0]
    assert understood in text, understood
    # The intake SOP: confirm the date we received it, never promise an outcome or a refund.
    assert "We received your message on 03 December 2026." in text
    assert "refunded" not in text and "we will refund" not in text.lower()
    assert d.sources[0] == "complaint-acknowledge" and "sop/complaint-acknowledge.md" in d.sources
    assert f"intent {intent} (0.80)" in d.evidence and "macro complaint-acknowledge" in d.evidence
    assert 0.0 < d.confidence <= 0.8


def test_amounts_dates_and_category_fill_the_intent_sentence() -> None:
    d = draft_local(ctx(intent="dispute_charge", intent_confidence=0.9, category="credit_card", amounts=["$35.00"],
                        dates=["March 3, 2024"]))
    assert "disputing a charge of $35.00 on March 3, 2024 on your credit card account." in d.text
    assert "amount $35.00" in d.evidence and "date March 3, 2024" in d.evidence
    plain = draft_local(ctx(intent="dispute_charge", intent_confidence=0.9))
    assert "disputing a charge on your account." in plain.text


def test_what_would_help_joins_the_macros_own_request_for_a_reply() -> None:
    d = draft_local(ctx(intent="payment_problem", intent_confidence=0.7))
    para = next(p for p in d.text.split("\n\n") if "simply reply to this email" in p)
    assert para.endswith("In particular, the payment confirmation (date, amount, method or confirmation number) "
                         "would help us.")


def test_the_intents_macro_is_used_where_its_stage_fits() -> None:
    d = draft_local(ctx(stage="investigation", intent="payment_problem", intent_confidence=0.7))
    assert d.sources[0] == "complaint-request-information"
    lines = d.text.splitlines()
    lead = lines.index("To investigate your complaint CMP-000042 we need a little more information:")
    assert lines[lead + 2].startswith("- the last four digits")  # the list stays with its lead-in
    assert "I understand that a payment was not applied" in d.text


def test_a_macro_that_states_facts_is_never_a_generic_source() -> None:
    # At triage the duplicate-charge refund macro fits the stage, but a fraud case must not read "We have refunded".
    for intent in ("fraud_identity_theft", "dispute_charge", "refund_fee_reversal", None):
        c = ctx(stage="triage", intent=intent, intent_confidence=0.7 if intent else None)
        macro = choose_macro(c, phrases_for(intent))
        assert macro is None or "refund" not in macro.name
        text = draft_local(c).text
        assert "refunded" not in text and "senior colleague" not in text


def test_an_imminent_deadline_makes_the_draft_say_urgent() -> None:
    d = draft_local(ctx(intent="hardship_modification", intent_confidence=0.7,
                        next_steps=[{"text": "Escalate: foreclosure sale date in 6 days", "escalate": True}]))
    assert "Because of the foreclosure sale you mentioned, due in 6 days, we are treating your complaint as " \
           "urgent." in d.text


def test_a_contract_request_draft_asks_for_the_missing_details() -> None:
    d = draft_local(ctx("contract", "request", reference="CTR-000007",
                        fields={"counterparty": "Acme Corp", "amount": None, "effective_date": None},
                        contract={"governing_law": "New York", "parties": "Acme Corp and Beta LLC"}))
    text = d.text
    assert text.startswith("Hello Jane,") and text.rstrip().endswith("Regards,\nAnn Agent")
    assert "Thank you for the contract request CTR-000007." in text  # the subject in brackets was cut
    assert SUBJECT not in text
    assert "counterparty's full legal name" not in text  # known: not asked again
    assert "the total contract value and payment schedule;" in text
    assert "From the documents we have noted: parties Acme Corp and Beta LLC; governing law New York." in text
    assert d.sources[0] == "contract-request-missing-details" and d.confidence == pytest.approx(0.6)


def test_no_macro_still_gives_a_plain_draft_with_lower_confidence() -> None:
    d = draft_local(ctx(intent="information_request", intent_confidence=0.9, macros=[]))
    assert d.text.startswith("Dear Jane Doe,") and "Kind regards,\nAnn Agent" in d.text
    assert d.confidence == pytest.approx(0.9 * 0.8)
    assert not any(s.startswith("complaint-") for s in d.sources)


def test_the_local_provider_drafts_through_run_capability() -> None:
    c = ctx(intent="debt_validation", intent_confidence=0.66)
    out = run_capability(LocalProvider(), "draft_reply", "I do not owe this debt.", context=c.model_dump(mode="json"))
    assert out.ok and out.output is not None
    assert "validation details of the debt" in out.output["text"]
    assert out.record["capability"] == "draft_reply" and out.record["confidence"] == pytest.approx(0.66)
    assert out.record["model_version"] == "macro-draft-v1"


# ---------------------------------------------------------------- edit distance


def test_edit_distance_is_zero_for_the_same_words_whatever_the_wrapping() -> None:
    draft = "Dear Jane,\n\nWe will review the charge.\n\nKind regards,\nAnn"
    assert edit_distance(draft, draft) == 0.0
    assert edit_distance(draft, "Dear Jane,  We will review the charge.\nKind regards, Ann\n") == 0.0
    assert edit_distance("", "") == 0.0


def test_edit_distance_counts_changed_words_over_the_longer_text() -> None:
    ten = "one two three four five six seven eight nine ten"
    assert edit_distance(ten, ten.replace("five", "FIVE")) == 0.1  # one word replaced of ten
    assert edit_distance(ten, ten + " eleven twelve") == round(2 / 12, 4)  # two words added
    assert edit_distance(ten, "one two three") == 0.7  # seven deleted of ten
    assert edit_distance(ten, "completely different words") == 1.0
    assert edit_distance(ten, "") == 1.0
    assert edit_distance("a b c d", "b c d a") == edit_distance("b c d a", "a b c d") == 0.5


def test_levenshtein_matches_the_textbook_table() -> None:
    assert levenshtein(list("kitten"), list("sitting")) == 3
    assert levenshtein(list("flaw"), list("lawn")) == 2
    assert levenshtein([], list("abc")) == 3


def test_a_very_long_pair_is_bounded_by_the_estimate() -> None:
    import casemgr.ai.drafting.distance as dist

    a = " ".join(f"w{i}" for i in range(3000))
    b = " ".join(f"w{i}" if i % 10 else f"x{i}" for i in range(3000))
    exact_small = dist.edit_distance(" ".join(a.split()[:300]), " ".join(b.split()[:300]))
    assert exact_small == 0.1
    est = dist.edit_distance(a, b)  # 9 million cells: difflib's matching blocks instead of the table
    assert 0.1 <= est <= 0.2
