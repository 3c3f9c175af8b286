"""Scope (language, spam, phishing, out of scope), the models' view of real email, and `ai eval` (issue 17)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casemgr.ai.emailclean import author_text
from casemgr.ai.providers import LocalProvider
from casemgr.ai.scope import assess
from casemgr.ai.wrap import ADVERTS, wrap_email
from casemgr.cli import app

COMPLAINT = ("My mortgage servicer did not apply my March payment of $1,250 and charged me a late fee. "
             "I sent proof of payment twice and they still report me late to the credit bureaus.")
MESSAGES = {
    "language:es": "Hola, mi tarjeta de crédito fue cobrada dos veces por la misma compra y el banco no me devuelve "
                   "el dinero. Necesito ayuda urgente por favor.",
    "language:de": "Guten Tag, meine Kreditkarte wurde zweimal für denselben Einkauf belastet und die Bank will "
                   "das Geld nicht zurückzahlen. Bitte helfen Sie mir.",
    "spam": "Congratulations! You have been selected for an exclusive deal: 70% off designer watches. Buy now, "
            "limited time offer! https://deals.example/shop https://deals.example/unsub Unsubscribe here.",
    "phishing": "Your account has been suspended due to unusual activity. Verify your account within 24 hours or "
                "it will be closed: http://secure-login.example-bank.top/verify",
    "out_of_scope": "Hi, I would like to book a table for four people on Friday evening at your restaurant, "
                    "preferably near the window with a view of the harbour. We will arrive around seven.",
}


@pytest.mark.parametrize("expected", sorted(MESSAGES))
@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_scope_flags_messages_the_models_must_not_judge(expected: str) -> None:
    res = assess(MESSAGES[expected])
    assert res.reason == expected and not res.in_scope
    assert res.evidence  # the flag says why


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_a_real_complaint_is_in_scope() -> None:
    assert assess(COMPLAINT).in_scope


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_shipped_complaints_are_almost_all_in_scope() -> None:
    """The 500 annotated CFPB complaints are real complaints: at most 1 % may be flagged."""
    from casemgr.ai.targets import annotated_data

    with open(annotated_data(), encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    flagged = [r["id"] for r in rows if not assess(r["narrative"]).in_scope]
    assert len(rows) == 500 and len(flagged) <= 5, flagged


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_out_of_scope_messages_get_no_confident_product_or_raised_urgency(name: str) -> None:
    c = LocalProvider().classify(MESSAGES[name])
    assert c.scope is not None and c.scope.needs_human and c.scope.reason == name
    assert c.category.confidence <= 0.2
    assert c.urgency.label in ("low", "normal") and c.urgency.confidence <= 0.2


def test_every_field_carries_evidence() -> None:
    c = LocalProvider().classify(COMPLAINT)
    assert c.category.evidence and c.urgency.evidence is not None
    assert c.intent is not None and c.intent.label
    assert any(w in " ".join(c.category.evidence).lower() for w in ("mortgage", "servicer", "payment", "late"))


@pytest.mark.parametrize("advert", [False, True])
@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_email_wrapping_and_pasted_adverts_are_removed_for_the_models(advert: bool) -> None:
    wrapped = wrap_email(COMPLAINT, random.Random(4), advert=advert)
    assert author_text(wrapped) == COMPLAINT
    assert not any(a[:30] in author_text(wrapped) for a in ADVERTS)


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_a_one_paragraph_complaint_is_never_emptied() -> None:
    text = "Apply now they said, limited time offer, and then the bank charged me a fee I never agreed to."
    assert author_text(text) == text


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_ai_eval_cli_reports_the_contract_fields(tmp_path: Path) -> None:
    from casemgr.ai.targets import annotated_data

    with open(annotated_data(), encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:60]
    data = tmp_path / "sample.csv"
    with open(data, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for target, col in (("category", "product"), ("urgency", "urgency"), ("intent", "intent")):
        res = CliRunner().invoke(app, ["ai", "eval", "--data", str(data), "--text", "narrative", "--label", col,
                                       "--target", target, "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert 0.0 <= out["macro_f1"] <= 1.0 and 0.0 <= out["ece"] <= 1.0 and out["docs_per_s"] > 0
        assert set(out["per_class_f1"]) >= {r[col] for r in rows}
        assert 0 < out["summary"]["compression_ratio"] <= 1.0 and out["summary"]["facts_in_source"] is not None
    bad = CliRunner().invoke(app, ["ai", "eval", "--data", str(data), "--text", "narrative", "--label", "intent",
                                   "--target", "mood", "--json"])
    assert bad.exit_code == 2 and "unknown target" in bad.output


CLEAR = {
    # (text, urgency level, intent): plain cases under the issue-17 guidelines, written for this test
    "foreclosure": ("My mortgage servicer scheduled a foreclosure sale of my home for next week even though my loan "
                    "modification application is still under review. Please stop the foreclosure sale.",
                    "critical", "hardship_modification"),
    "collector": ("A debt collector keeps calling me ten times a day at work and threatened to have me arrested. "
                  "Please make the collector stop calling and harassing me.",
                  "critical", "stop_collector_conduct"),
}


@pytest.mark.parametrize("name", sorted(CLEAR))
def test_urgency_and_intent_carry_their_cue_words_and_are_not_capped(name: str) -> None:
    """The urgency and intent models are linear models over word + char columns: their evidence is read from
    the word coefficients. Before that, both had no evidence on every text and were capped at 0.45."""
    from casemgr.ai.providers.local import NO_EVIDENCE_CONFIDENCE
    text, level, intent = CLEAR[name]
    c = LocalProvider().classify(text)
    for field, expected in ((c.urgency, level), (c.intent, intent)):
        assert field is not None and field.label == expected, (name, field)
        cues = [e for e in field.evidence if " " not in e]
        assert cues and all(w in text.lower() for w in cues), field.evidence  # cue words of this text (or their stems)
        assert any(len(e) > 40 and e in text for e in field.evidence), field.evidence  # and the sentence holding them
        assert field.confidence > NO_EVIDENCE_CONFIDENCE, field


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_linear_member_lift_reads_only_word_columns_and_handles_binary_models() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    from casemgr.ai.evidence import _lift

    texts = ["refund my fee please", "fee refund now", "stolen identity fraud", "fraud on my identity"] * 3
    labels = ["refund", "refund", "fraud", "fraud"] * 3
    model = make_pipeline(make_union(TfidfVectorizer(), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3))),
                          LogisticRegression()).fit(texts, labels)
    for label, cue, other in (("refund", "refund", "fraud"), ("fraud", "fraud", "refund")):
        vocab, lift = _lift(model, label)
        assert len(lift) == len(vocab)  # the char columns that follow are not read as words
        assert lift[vocab[cue]] > 0 > lift[vocab[other]]
    assert _lift(model, "no-such-label") is None
