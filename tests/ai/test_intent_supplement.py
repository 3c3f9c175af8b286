"""The intent model's hand-written supplement: valid rows, kept out of every CV test fold, shipped in the model."""

from __future__ import annotations

import csv
import json

import pytest

from casemgr.ai import classifier, targets
from casemgr.ai.targets import INTENTS, URGENCY_LEVELS
from casemgr.ai.text import normalise


def _rows(path: object) -> list[dict[str, str]]:
    with open(str(path), encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_supplement_rows_are_labelled_under_the_guidelines_and_distinct_from_the_real_rows() -> None:
    tgt = targets.get("intent")
    assert tgt.supplement
    real = _rows(targets.annotated_data())
    supp_texts, supp_labels = targets.supplement_rows(tgt)
    rows = _rows(targets.annotated_data().with_name("intent-supplement.csv"))
    assert len(rows) == len(supp_texts) >= 200
    assert len({r["id"] for r in rows}) == len(rows) and all(r["id"].startswith("s") for r in rows)
    products = {r["product"] for r in real}
    for r in rows:
        assert r["intent"] in INTENTS and r["urgency"] in URGENCY_LEVELS and r["product"] in products, r["id"]
        assert r["narrative"] == normalise(r["narrative"]), r["id"]  # already in the training form
    # No real narrative was copied in (the CV test folds must stay about unseen text).
    assert not {r["narrative"] for r in rows} & {r["narrative"] for r in real}
    assert set(supp_labels) <= {r["intent"] for r in real}


def test_cross_validation_scores_only_the_real_rows_and_trains_on_the_supplement() -> None:
    texts = [f"mortgage escrow payment servicer {i}" for i in range(6)] + [f"card charge merchant {i}" for i in range(6)]
    labels = ["loan"] * 6 + ["card"] * 6
    # Supplementary rows that teach a word the real rows never pair with a label.
    extra = ([f"zebra card charge {i}" for i in range(20)], ["card"] * 20)
    plain, _ = classifier.cross_validate(texts, labels, folds=3, builder=targets.get("intent").builder())
    with_extra, oof = classifier.cross_validate(texts, labels, folds=3, builder=targets.get("intent").builder(),
                                                extra=extra)
    assert with_extra["n"] == plain["n"] == 12 and oof.shape == (12, 2)
    cm = classifier.train_texts(texts, labels, folds=3, builder=targets.get("intent").builder(), raw_decision=True,
                                extra=extra)
    assert cm.meta["n_train"] == 12 and cm.meta["n_supplement"] == 20 and len(cm.meta["cv"]["oof"]) == 12
    assert cm.predict(["zebra"])[0][0] == "card"  # the final fit saw the supplement
    with pytest.raises(ValueError, match="supplementary labels not in the data"):
        classifier.train_texts(texts, labels, folds=0, extra=(["x y"], ["mood"]))


def test_intent_is_the_lr_nblr_ensemble_and_urgency_the_single_lr() -> None:
    """Chosen per target by 5-fold CV (README): the NB-weighted LR member lifts intent and hurts urgency."""
    intent, urgency = targets.get("intent").builder()(), targets.get("urgency").builder()()
    assert isinstance(intent, classifier.ProbaEnsemble) and intent.combine == "geometric"
    assert [type(m.steps[-1][1]).__name__ for m in intent.members] == ["LogisticRegression", "NBLogisticRegression"]
    assert intent.members[0].steps[-1][1].C == targets.get("intent").C
    assert not isinstance(urgency, classifier.ProbaEnsemble)
    assert urgency.steps[-1][1].class_weight == "balanced"


@pytest.mark.parametrize(("target", "floor"), [("intent", 0.66), ("urgency", 0.60)])
def test_shipped_target_model_was_trained_with_the_supplement_and_scored_on_real_rows_only(target: str,
                                                                                          floor: float) -> None:
    tgt = targets.get(target)
    path = classifier.bundled_artifact(tgt.prefix)
    meta = json.loads(path.with_suffix(".json").read_text())
    n_supp = len(targets.supplement_rows(tgt)[0])
    assert meta["n_train"] == 500 and meta["n_supplement"] == n_supp and meta["supplement"] == "intent-supplement.csv"
    assert meta["supplement_sha256"] == classifier.file_sha256(targets.supplement_path(tgt))
    assert meta["cv"]["n"] == 500 and len(meta["cv"]["oof"]) == 500
    assert meta["raw_decision"] is True
    assert meta["kind"] == tgt.kind
    # Real-row 5-fold CV figure of the shipped recipe, seed 0 (intent: 0.589 without the supplement, 0.647 for
    # the single LR, 0.694 for the LR+NBLR ensemble; urgency 0.604 without the supplement).
    assert meta["cv"]["macro_f1"] >= floor, meta["cv"]["macro_f1"]


def test_candidate_rows_are_valid_and_no_target_trains_on_them() -> None:
    """data/intent-supplement-candidates.csv: written and measured, not trained on (ANNOTATION-GUIDELINES.md)."""
    path = targets.annotated_data().with_name("intent-supplement-candidates.csv")
    rows = _rows(path)
    supp = _rows(targets.annotated_data().with_name("intent-supplement.csv"))
    real = _rows(targets.annotated_data())
    products = {r["product"] for r in real}
    assert len(rows) == 98 and list(rows[0]) == list(supp[0])
    # Ids continue the supplement's, so the rows can be appended to it unchanged.
    assert [r["id"] for r in rows] == [f"s{n:03d}" for n in range(len(supp) + 1, len(supp) + len(rows) + 1)]
    for r in rows:
        assert r["intent"] in INTENTS and r["urgency"] in URGENCY_LEVELS and r["product"] in products, r["id"]
        assert r["narrative"] == normalise(r["narrative"]) and r["narrative"], r["id"]
    assert not {r["narrative"] for r in rows} & ({r["narrative"] for r in real} | {r["narrative"] for r in supp})
    assert all(t.supplement != "data/intent-supplement-candidates.csv" for t in targets.TARGETS.values())
