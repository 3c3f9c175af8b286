"""Governed learning from overrides (issue 21): dataset export, candidate training with a gate, activation
through four eyes, the model version on decisions, rollback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.cli import app
from casemgr.db import read_session, write_session
from casemgr.errors import PermissionDenied, ValidationFailed
from casemgr.learning import activation, candidates, dataset, store
from casemgr.learning.enums import Split

from . import scenario as sc

runner = CliRunner()


def _override_without_value() -> int:
    """An override that only undid the AI (no right value given): it teaches nothing."""
    from casemgr.cases import service as cases
    from casemgr.cases.schemas import CaseCreate
    from casemgr.governance import service as gov
    from casemgr.governance.decide import AIOutput
    from tests.governance.util import policy

    sampled = policy(lambda d: (d["review"].update(sample_rate=1.0), d["decisions"]["classify"].update(threshold=0.0)))
    with write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type="complaint", subject="s", description="d"),
                                 actor="user:test", route=False)
        row = gov.record_decision(s, case, AIOutput(kind="classify", field="category", value={"category": "credit_card"},
                                                    confidence=0.9, model_version="m1"), policy=sampled, route=False)
        gov.review_decision(s, int(row.id or 0), actor="user:r", roles={"reviewer"}, verdict="override",
                            reason_code="wrong_category", policy=sampled)
        return int(row.id or 0)


def test_dataset_export_has_provenance_and_a_split_by_case(tmp_path: Path) -> None:
    accepts = sc.seed_generic_accepts(6, reviewer="user:ann")
    overrides = sc.seed_drift_overrides(4, reviewer="user:bob")
    skipped = _override_without_value()
    out = tmp_path / "examples.jsonl"
    r = runner.invoke(app, ["ai", "dataset", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["decision_id"] for x in rows] == accepts + overrides  # the value-less override is skipped
    assert skipped not in {x["decision_id"] for x in rows}
    assert '"skipped": 1' in r.output and '"overridden": 4' in r.output and '"accepted": 6' in r.output
    by_id = {x["decision_id"]: x for x in rows}
    for d in overrides:
        x = by_id[d]
        assert x["verdict"] == "overridden" and x["label"] == "mortgages_and_loans" and x["reviewer"] == "user:bob"
        assert x["ai_label"] != x["label"] and "quillpay" in x["text"]
    for d in accepts:
        assert by_id[d]["verdict"] == "accepted" and by_id[d]["label"] == by_id[d]["ai_label"]
    for x in rows:
        assert x["policy_version"] and x["model_version"] == "tfidf-cue-ensemble-v2:active" and x["reviewed_at"]
        assert x["case_reference"] and x["split"] == dataset.split_of(x["case_id"]).value
    csv_out = tmp_path / "examples.csv"
    r = runner.invoke(app, ["ai", "dataset", "export", "--format", "csv", "--out", str(csv_out), "--split", "holdout"])
    assert r.exit_code == 0, r.output
    with csv_out.open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert tuple(got[0].keys()) == dataset.COLUMNS if got else True
    assert [int(x["decision_id"]) for x in got] == [x["decision_id"] for x in rows if x["split"] == "holdout"]
    assert runner.invoke(app, ["ai", "dataset", "export", "--split", "nope"]).exit_code == 2


def test_the_split_is_by_case_and_stable() -> None:
    share = 0.3
    picks = [dataset.split_of(i, share) for i in range(1, 5001)]
    assert picks == [dataset.split_of(i, share) for i in range(1, 5001)]
    held = picks.count(Split.HOLDOUT) / len(picks)
    assert 0.27 < held < 0.33, held


def test_a_candidate_that_does_not_beat_the_active_model_is_refused(make_user) -> None:  # type: ignore[no-untyped-def]
    sc.seed_generic_accepts(40)
    r = runner.invoke(app, ["ai", "train", "--candidate", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["verdict"] == "refused" and "does not beat" in report["why"]
    comp = report["comparison"]
    # The reviewers accepted what the active model said: it is right on every held-back case, nothing beats that.
    assert comp["active"]["macro_f1"] == 1.0 and comp["macro_f1_gain"] <= 0
    assert comp["n"] == report["examples"]["holdout"] >= 5
    for key in ("macro_f1", "ece", "accuracy"):
        assert key in comp["active"] and key in comp["candidate"]
    assert set(comp["per_class"]) >= {"credit_reporting", "debt_collection"}
    # Stored as a versioned artefact in the data dir, not in the package, with its report beside it.
    art = store.artifact_path(report["version"])
    assert art.is_file() and art.with_suffix(".json").is_file() and store.read_report(report["version"])["verdict"] == "refused"
    assert "casemgr/ai/artifacts" not in str(art)
    lead, _ = make_user("governance")
    with write_session() as s, pytest.raises(ValidationFailed, match="refused"):
        activation.request_activation(s, report["version"], actor=f"user:{lead}", user_id=None,
                                      roles={"governance"}, reason="try it")
    from casemgr.audit.models import AuditEvent

    with read_session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "ai-model.candidate_trained")).scalar_one()
        assert ev.after["verdict"] == "refused" and ev.entity == f"ai-model:{report['version']}"


def test_too_few_held_back_cases_offer_nothing() -> None:
    sc.seed_drift_overrides(4)
    report = candidates.train_candidate(actor="user:t", min_holdout=50)
    assert report["verdict"] == "refused" and "at least 50" in report["why"] and "version" not in report
    assert not store.models_dir().exists() or not list(store.models_dir().glob("*.joblib"))


def test_a_better_candidate_is_offered_activated_by_a_second_lead_and_rolled_back(make_user, make_case) -> None:  # type: ignore[no-untyped-def]
    from casemgr.ai.providers.local import LocalProvider
    from casemgr.documents import changes

    sc.seed_generic_accepts(10)
    sc.seed_drift_overrides(30)
    report = candidates.train_candidate(actor="user:t")
    assert report["verdict"] == "offered", report["why"]
    comp = report["comparison"]
    assert comp["candidate"]["macro_f1"] > comp["active"]["macro_f1"]
    assert comp["per_class"]["mortgages_and_loans"]["change"] > 0
    # Neither model trained on the held-back slice: it is disjoint from the candidate's training examples and the
    # bundled model trained only on the shipped file.
    meta = json.loads(store.artifact_path(report["version"]).with_suffix(".json").read_text())
    assert set(meta["trained_on_decisions"]).isdisjoint(report["holdout_decisions"])
    with read_session() as s:
        splits = {e.decision_id: e.split for e in dataset.examples(s)}
    assert {splits[d] for d in report["holdout_decisions"]} == {"holdout"}
    bundled = LocalProvider().category_model.version
    drift_text = "QuillPay plan\n\nquillpay split my card charge into instalments and charged a late fee"
    assert LocalProvider().classify(drift_text).category.label != "mortgages_and_loans"

    lead1, _ = make_user("governance")
    lead2, _ = make_user("governance")
    with read_session() as s:
        from casemgr.users.service import get_user_by_name

        u1, u2 = get_user_by_name(s, lead1), get_user_by_name(s, lead2)
        ids = (u1.id, u2.id)
    with write_session() as s:
        with pytest.raises(ValidationFailed, match="reason"):
            activation.request_activation(s, report["version"], actor=f"user:{lead1}", user_id=ids[0],
                                          roles={"governance"}, reason=" ")
    with write_session() as s:
        row = activation.request_activation(s, report["version"], actor=f"user:{lead1}", user_id=ids[0],
                                            roles={"governance"}, reason="QuillPay complaints are loans")
        rid = int(row.id or 0)
        assert row.status == "pending" and row.kind == "ai-model" and report["version"] in row.diff
    with write_session() as s, pytest.raises(PermissionDenied, match="four eyes"):
        changes.approve(s, rid, actor=f"user:{lead1}", user_id=ids[0], roles={"governance"})
    assert LocalProvider().category_model.version == bundled  # nothing in force before the second lead approves
    with write_session() as s:
        changes.approve(s, rid, actor=f"user:{lead2}", user_id=ids[1], roles={"governance"}, comment="ok")
    from casemgr.runtime import current

    current().model.refresh(force=True)  # as every process does within CHECK_S seconds
    provider = LocalProvider()
    assert provider.category_model.version == report["version"]
    assert f":{report['version']}" in (provider.version("classify")[0] or "")
    assert provider.classify(drift_text).category.label == "mortgages_and_loans"
    # Every decision names the model version.
    cid = make_case(subject="QuillPay plan", description="quillpay charged my card statement twice for one plan")
    from casemgr.governance import service as gov
    from casemgr.governance.enrich import enrich_case

    with write_session() as s:
        enrich_case(s, cid)

    with read_session() as s:
        rows = gov.decisions_for_case(s, cid, include_rejected=True)
        assert rows and all(report["version"] in (r.model_version or "") for r in rows if r.kind == "classify")
        hist = activation.history(s)
    assert [h["model_version"] for h in hist] == [report["version"], bundled]
    assert hist[0]["is_active"] and hist[1]["author"] == "system:shipped"
    # Rollback to the previous model (the bundled one, version 1).
    with write_session() as s:
        with pytest.raises(PermissionDenied):
            activation.rollback(s, actor="user:x", roles={"reviewer"}, reason="no")
        activation.rollback(s, actor=f"user:{lead2}", roles={"governance"}, reason="back to the shipped model")
    current().model.refresh(force=True)
    assert LocalProvider().category_model.version == bundled
    # The comparison was against the bundled model, which is in force again: the same candidate may be requested
    # again, but a candidate compared against another model may not.
    with read_session() as s:
        assert activation.why_not_offered(s, report) is None


def test_the_weekly_job_trains_and_reports_but_never_activates(run_jobs) -> None:  # type: ignore[no-untyped-def]
    from casemgr.documents import service as documents
    from casemgr.jobs.service import enqueue
    from casemgr.learning.enums import TRAIN_JOB
    from casemgr.learning.model_doc import KIND
    from casemgr.worker import SCHEDULES

    assert dict(SCHEDULES)[TRAIN_JOB]() == 7 * 24 * 3600.0
    sc.seed_generic_accepts(5)
    sc.seed_drift_overrides(25)
    with write_session() as s:
        enqueue(s, TRAIN_JOB, {}, idempotency_key="week-1")
    assert run_jobs().get("done") == 1
    (report,) = store.reports()
    assert report["actor"] == "worker" and report["verdict"] == "offered"
    with read_session() as s:
        assert documents.active_version(s, KIND) is None  # offered, not activated
    with write_session() as s:
        enqueue(s, TRAIN_JOB, {}, idempotency_key="week-2")
    assert run_jobs().get("done") == 1
    assert len(store.reports()) == 1  # nothing new since: no second candidate


@pytest.mark.parametrize("version", ["123456789012", "0b1010101010"])
def test_a_version_that_yaml_would_read_as_a_number_is_requested_and_put_in_force(make_user, version: str) -> None:  # type: ignore[no-untyped-def]
    """A content hash may be all digits (about 1 in 280) or look like a binary literal. The pointer must still read
    back as the same string: it used to fail its own validation, so that candidate could never be requested (422)."""
    from casemgr.ai.providers.local import LocalProvider
    from casemgr.documents import changes
    from casemgr.users.service import get_user_by_name

    sc.seed_generic_accepts(10)
    sc.seed_drift_overrides(30)
    report = candidates.train_candidate(actor="user:t")
    assert report["verdict"] == "offered", report["why"]
    # The same candidate under a hash-shaped name that YAML 1.1 reads as an int.
    src = store.artifact_path(report["version"])
    dst = store.artifact_path(version)
    dst.write_bytes(src.read_bytes())
    meta = json.loads(src.with_suffix(".json").read_text())
    dst.with_suffix(".json").write_text(json.dumps({**meta, "version": version, "artifact": dst.name}))
    store.write_report(version, {**report, "version": version, "artifact": f"candidates/{dst.name}"})

    lead1, _ = make_user("governance")
    lead2, _ = make_user("governance")
    with read_session() as s:
        ids = [get_user_by_name(s, n).id for n in (lead1, lead2)]
    with write_session() as s:
        row = activation.request_activation(s, version, actor=f"user:{lead1}", user_id=ids[0],
                                            roles={"governance"}, reason="hash-shaped version")
        rid = int(row.id or 0)
        assert row.status == "pending" and f"'{version}'" in row.files["ai-model.yaml"]
    with write_session() as s:
        changes.approve(s, rid, actor=f"user:{lead2}", user_id=ids[1], roles={"governance"}, comment="ok")
    from casemgr.runtime import current

    current().model.refresh(force=True)  # as every process does within CHECK_S seconds
    assert LocalProvider().category_model.version == version
