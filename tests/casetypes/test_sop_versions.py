"""Issue 22: SOPs and work instructions are a versioned document; a task records the SOP version it was done
under, and the case page shows the instruction in force."""

from __future__ import annotations

from sqlalchemy import select

from casemgr.cases import service
from casemgr.cases.models import Task
from casemgr.casetypes import sops
from casemgr.casetypes.documents import SOPS
from casemgr.db import read_session, write_session
from tests.casetypes.helpers import publish

NEW_TEXT = "# Acknowledge the customer (v2)\n\nCall the customer within one hour, then write.\n"


def _task(case_id: int, sop: str) -> Task:
    with read_session() as s:
        t = s.execute(select(Task).where(Task.case_id == case_id, Task.sop == sop)).scalars().first()
        assert t is not None
        s.expunge(t)
        return t


def _complete(case_id: int, task_id: int) -> Task:
    with write_session() as s:
        service.complete_task(s, case_id, task_id, "user:test")
    with read_session() as s:
        t = s.get(Task, task_id)
        assert t is not None
        s.expunge(t)
        return t


def test_shipped_sops_are_one_document_with_subfolders() -> None:
    doc = SOPS.shipped()
    assert "complaint-acknowledge.md" in doc.files and "rules/fraud-check.md" in doc.files
    assert SOPS.validate(doc) == dict(doc.files)


def test_task_records_the_sop_version_it_was_done_under(make_case) -> None:  # type: ignore[no-untyped-def]
    link = "sop/complaint-acknowledge.md"
    first = make_case()
    v1 = SOPS.shipped().version
    done1 = _complete(first, int(_task(first, link).id or 0))
    assert done1.sop_version == v1
    old_text = sops.sop_text(link)
    assert old_text and "v2" not in old_text

    files = {**SOPS.shipped().files, "complaint-acknowledge.md": NEW_TEXT}
    v2 = publish("sop", files, reason="call first")["version"]
    assert v2 != v1 and sops.current_version() == v2
    second = make_case()
    done2 = _complete(second, int(_task(second, link).id or 0))
    assert done2.sop_version == v2
    assert sops.sop_text(link) == NEW_TEXT
    with read_session() as s:  # what the first task was done under is still readable
        assert sops.text_of_version(s, link, done1.sop_version) == old_text
        assert sops.text_of_version(s, link, done2.sop_version) == NEW_TEXT


def test_a_task_without_sop_records_none(make_case, agent_client) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    r = agent_client.post(f"/api/cases/{case_id}/tasks", json={"name": "Call back"})
    assert r.status_code == 201, r.text
    assert _complete(case_id, r.json()["id"]).sop_version is None


def test_an_sop_version_with_a_bad_name_or_empty_file_is_refused() -> None:
    from casemgr.casetypes import lifecycle

    files = {**SOPS.shipped().files, "../escape.md": "x", "empty.md": "  \n"}
    problems = lifecycle.check("sop", files)
    assert {p.message.split(" ")[0] for p in problems} == {"SOP"}
    assert len(problems) == 2
