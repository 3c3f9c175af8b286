"""Cue tokens (domain lexicon) and the NB-weighted logistic regression member of the ensemble."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

from casemgr.ai.cues import CueTokens, cue_lexicon, cue_tokens
from casemgr.ai.nblr import NBLogisticRegression

pytestmark = pytest.mark.no_db  # runs no SQL: the PostgreSQL run leaves it out (scripts/test.sh)

LABELS = ["credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking"]


def test_lexicon_covers_exactly_the_five_categories() -> None:
    lex = cue_lexicon()
    assert sorted(lex) == LABELS
    assert all(len(terms) >= 20 for terms in lex.values())
    assert "equifax" in lex["credit_reporting"] and "escrow" in lex["mortgages_and_loans"]


def test_cue_tokens_match_words_and_bigrams() -> None:
    toks = cue_tokens("collection agency called equifax escrow")
    assert toks.count("cuedebtcollection") == 2  # "collection" and "collection agency"
    assert "cuecreditreporting" in toks and "cuemortgagesandloans" in toks
    assert cue_tokens("nothing relevant here") == []


def test_cue_transformer_appends_and_is_stable_after_fit() -> None:
    ct = CueTokens().fit(["x"])
    out = ct.transform(["overdraft fee checking", "hello"])
    assert out[0].startswith("overdraft fee checking ") and "cueretailbanking" in out[0].split()
    assert out[1] == "hello"
    assert all(isinstance(v, tuple) for v in ct.lexicon_.values())  # deterministic pickle bytes


def test_nb_logistic_regression_learns_and_gives_probabilities() -> None:
    docs = ["card fee charge", "card purchase charge", "loan escrow home", "mortgage loan home", "card charge", "home loan"]
    y = ["card", "card", "loan", "loan", "card", "loan"]
    model = make_pipeline(TfidfVectorizer(), NBLogisticRegression(C=4)).fit(docs, y)
    assert list(model.predict(["charge on my card", "escrow for the home"])) == ["card", "loan"]
    proba = model.predict_proba(["card loan"])
    assert proba.shape == (1, 2) and np.isclose(proba.sum(), 1.0)
