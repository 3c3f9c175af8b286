"""Every CSV export neutralises spreadsheet formulas (issue 18, CSV injection).

Text that reaches an export (an actor name, a case subject, AI training text) and starts with = + - @, a tab
or a CR was written as is, so opening the export in a spreadsheet ran it. Only the dashboard export guarded
against = + - @. Now one helper writes every CSV; a module that writes CSV another way fails the guard test.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from casemgr import csvsafe
from casemgr.cases import service as cases
from casemgr.cases.schemas import CaseCreate
from casemgr.db import read_session, write_session

PACKAGE = Path(__file__).resolve().parents[2] / "casemgr"
PAYLOADS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1"]


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _assert_inert(text: str, payload: str) -> None:
    cells = _cells(text)
    assert any(c == "'" + payload for c in cells), (payload, cells)
    assert not [c for c in cells if c.startswith(csvsafe.FORMULA_STARTS)], cells


# CSV that never leaves the process for a person's spreadsheet, so its cells stay exactly as they are.
NOT_EXPORTS = {
    "csvsafe.py": "the helper itself",
    "ai/evaluate.py": "a temporary training file read back at once by classifier.train and deleted",
}


def test_no_module_writes_csv_around_the_helper() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if str(p.relative_to(PACKAGE)) not in NOT_EXPORTS
                 and re.search(r"\bcsv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert offenders == [], f"write CSV with casemgr.csvsafe: {offenders}"


@pytest.mark.parametrize("value,expected", [("=1", "'=1"), ("plain", "plain"), ("a=b", "a=b"), (-5, -5),
                                            ("", ""), (None, None), ("\tx", "'\tx")])
def test_cell(value: object, expected: object) -> None:
    assert csvsafe.cell(value) == expected


@pytest.mark.parametrize("payload", PAYLOADS)
def test_audit_csv_export(payload: str) -> None:
    from casemgr.audit import service as audit

    with write_session() as s:
        audit.record(s, actor=payload, action="note.added", entity=payload)
    with read_session() as s:
        out = io.StringIO()
        audit.export(s, "csv", out)
    _assert_inert(out.getvalue(), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_event_log_csv_export(payload: str) -> None:
    from casemgr.metrics.export import write_csv

    with write_session() as s:
        cases.create_case(s, CaseCreate(case_type="complaint", subject="x", description="y"), actor=payload)
    with read_session() as s:
        out = io.StringIO()
        write_csv(s, out, include_audit=True)
    _assert_inert(out.getvalue(), payload)


def test_training_csv_export() -> None:
    from governance.util import policy

    from casemgr.governance import service
    from casemgr.governance.decide import AIOutput

    payload = PAYLOADS[1]
    sampled = policy(lambda d: d["review"].update(sample_rate=1.0))
    with write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type="complaint", subject=payload, description=""),
                                 actor="user:test")
        row = service.record_decision(s, case, AIOutput(kind="classify", field="category",
                                                        value={"category": "debt_collection"}, confidence=0.95,
                                                        model_version="m-1", provider="local"), policy=sampled)
        row_id = row.id
    with write_session() as s:
        service.review_decision(s, row_id, actor="user:r", roles={"reviewer"}, verdict="override",
                                reason_code="wrong_category", value={"category": "credit_card"}, policy=sampled)
    with read_session() as s:
        _assert_inert(service.export_training_csv(s), payload)
