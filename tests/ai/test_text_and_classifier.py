"""Normalisation of raw text and the shipped category classifier."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casemgr.ai import classifier
from casemgr.ai.text import normalise, stopwords, strip_quoted_and_signature
from casemgr.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPLAINTS = ROOT.parent / "shared" / "data" / "cfpb-complaints" / "complaints.csv"
needs_data = pytest.mark.shared_data("cfpb-complaints/complaints.csv")
# Model quality does not depend on the database: measured once, in the SQLite pass of `make test` (it was
# measured again, minutes of CPU, in the PostgreSQL pass).
pytestmark = pytest.mark.sqlite_only

RAW_EMAIL = """<html><body><p>Hello,</p>
<p>I've been charged TWO late fees on my Capital One credit card statements, although I paid on 03/04/2024!
My account XXXX-1234 shows the payments.</p>
<p>Regards,<br>Ann</p>
<blockquote>On Mon, Bank wrote: we value you</blockquote></body></html>"""


def test_normalise_matches_training_style() -> None:
    out = normalise("I've been charged TWO late fees, on my Credit-Cards!! (account 1234)")
    assert out == out.lower()
    assert not any(ch.isdigit() for ch in out)
    assert "been" not in out.split() and "on" not in out.split() and "my" not in out.split()
    assert "ive" in out.split()  # apostrophes dropped as in the data ("ive", "cant")
    assert {"charged", "late", "credit"} <= set(out.split())


def test_normalise_strips_html_quotes_signature() -> None:
    text = normalise(RAW_EMAIL, vocabulary=frozenset({"fee", "statement", "payment"}))
    words = text.split()
    assert "html" not in words and "regards" not in words and "ann" not in words and "value" not in words
    assert "fee" in words and "statement" in words and "payment" in words  # plurals singularised via vocabulary
    assert "xxxx" not in words


def test_reply_cut_keeps_authors_words() -> None:
    body = "My loan was sold.\nPlease help.\n\n-- \nJoe\n> old quoted text"
    assert strip_quoted_and_signature(body).strip() == "My loan was sold.\nPlease help."
    assert normalise("My card was charged twice.\n--Sent from my iPhone") == "card charged twice"
    assert normalise("--Sent from my iPhone") == ""


def test_stopword_list_is_nltk_english() -> None:
    sw = stopwords()
    assert len(sw) == 179 and {"the", "i", "wouldn't", "ourselves"} <= sw and "never" not in sw


@needs_data
def test_stopword_list_fits_the_training_data() -> None:
    sw = stopwords()
    rows = list(csv.DictReader(COMPLAINTS.open()))
    words = [w for r in rows for w in r["narrative"].split()]
    assert sum(w in sw for w in words) / len(words) < 0.001
    # Normalising already-normalised text changes (almost) nothing.
    same = sum(normalise(r["narrative"]) == r["narrative"] for r in rows)
    assert same / len(rows) > 0.95


def test_shipped_artifact_loads_with_metadata() -> None:
    path = classifier.bundled_artifact()
    assert path.stat().st_size < 8_000_000
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["version"] in path.name and len(meta["training_data_sha256"]) == 64
    assert meta["labels"] == ["credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking"]
    assert meta["cv"]["macro_f1"] >= 0.75
    cm = classifier.default_model()
    label, conf, probs = cm.predict([RAW_EMAIL])[0]
    assert label == "credit_card" and 0 <= conf <= 1 and abs(sum(probs.values()) - 1) < 0.01


@pytest.mark.slow  # a rate floor on a shared 2-core machine; `casemgr bench` measures speed
@pytest.mark.timing
def test_throughput_one_core_batched() -> None:
    from threadpoolctl import threadpool_limits

    cm = classifier.default_model()
    texts = [RAW_EMAIL, "debt collector keeps calling about debt i do not owe", "mortgage escrow payment wrong"] * 100
    cm.predict(texts[:5])
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        for i in range(0, len(texts), 64):
            cm.predict(texts[i : i + 64])
        rate = len(texts) / (time.perf_counter() - t0)
    assert rate >= 50, rate


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["body", "topic"])
        w.writerows(rows)


def test_train_writes_versioned_artifact_and_eval_only_predicts(tmp_path: Path) -> None:
    rows = [(f"card charged fee statement purchase {i}", "card") for i in range(6)]
    rows += [(f"mortgage escrow loan servicer home {i}", "loan") for i in range(6)]
    data = tmp_path / "train.csv"
    _write_csv(data, rows)
    runner = CliRunner()
    res = runner.invoke(app, ["ai", "train", "--data", str(data), "--text", "body", "--label", "topic",
                              "--out", str(tmp_path / "m"), "--folds", "3", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    art = Path(info["artifact"])
    assert art.exists() and art.name == f"complaints-{info['version']}.joblib"
    meta = json.loads(Path(info["metadata"]).read_text())
    assert meta["labels"] == ["card", "loan"] and meta["cv"]["folds"] == 3 and meta["n_train"] == 12
    # Same data, same bytes -> same version (content hash).
    res2 = runner.invoke(app, ["ai", "train", "--data", str(data), "--text", "body", "--label", "topic",
                               "--out", str(tmp_path / "m2"), "--folds", "0", "--json"])
    assert res2.exit_code == 0
    # Eval with deliberately wrong labels: a model that trained on the eval data would learn them.
    swapped = tmp_path / "swapped.csv"
    _write_csv(swapped, [(t, "loan" if lab == "card" else "card") for t, lab in rows])
    before = art.read_bytes()
    res3 = runner.invoke(app, ["ai", "eval", "--data", str(swapped), "--text", "body", "--label", "topic",
                               "--model", str(art), "--json"])
    assert res3.exit_code == 0, res3.output
    out = json.loads(res3.output)
    assert out["n"] == 12 and out["accuracy"] == 0.0 and out["docs_per_s"] > 0
    assert set(out) >= {"n", "accuracy", "macro_f1", "per_label", "docs_per_s"}
    assert art.read_bytes() == before


def test_classify_cli_reads_stdin() -> None:
    res = CliRunner().invoke(app, ["ai", "classify", "--json"], input=RAW_EMAIL)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["category"]["label"] == "credit_card"
    for key in ("category", "urgency", "sentiment"):
        assert 0.0 <= out[key]["confidence"] <= 1.0


@needs_data
def test_eval_cli_on_complaints_reports_contract_fields() -> None:
    res = CliRunner().invoke(app, ["ai", "eval", "--data", str(COMPLAINTS), "--text", "narrative",
                                   "--label", "product", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # The 50 docs/s floor is a speed figure, asserted alone on the machine by the slow suite
    # (test_local_capabilities.py::test_bench_one_core_throughput_floor); here it failed whenever the host was busy.
    assert out["n"] == 500 and len(out["per_label"]) == 5 and out["docs_per_s"] > 0


@needs_data
def test_cross_validated_macro_f1() -> None:
    """Stratified 5-fold CV of the shipped configuration on complaints.csv (~10 s)."""
    texts, labels = classifier.read_labelled_csv(COMPLAINTS, "narrative", "product")
    scores, oof = classifier.cross_validate(texts, labels, folds=5, seed=0)
    # 0.763 with scikit-learn 1.9.1 (mean of 10 shuffles 0.766, min 0.757); the floor is 0.75.
    assert scores["macro_f1"] >= 0.75, scores
    assert oof.shape == (500, 5)
