"""A new document kind joins casemgr.documents as its __init__ says: publish, baseline, rollback, hot reload."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.db import read_session, write_session
from casemgr.documents import service
from casemgr.documents.document import Document, SingleFileType
from casemgr.documents.enums import BASELINE_AUTHOR, DocumentKind
from casemgr.documents.live import LiveDocument
from casemgr.errors import NotFound, ValidationFailed
from casemgr.policyfile import PolicyFileError, Problem, load_yaml_text


class Macros(SingleFileType[dict]):
    """A toy 'macros' kind: a mapping of macro name -> reply text (every value must be text)."""

    kind = DocumentKind.MACROS
    row_name = "macros.yaml"
    file_name = "macros.yaml"

    def __init__(self, path: Path) -> None:
        self.path = path

    def shipped_path(self) -> Path:
        return self.path

    def validate(self, doc: Document, *, label: str | None = None) -> dict:
        loaded = load_yaml_text(doc.text, label or self.file_name)
        bad = [k for k, v in (loaded.data or {}).items() if not isinstance(v, str)]
        if not isinstance(loaded.data, dict) or bad:
            raise PolicyFileError([Problem(loaded.file, loaded.line_of((bad[0],)) if bad else 1, "macros are text")])
        return dict(loaded.data)


SHIPPED = "greet: Hello\nbye: Goodbye\n"
V2 = "greet: Hi there\nbye: Goodbye\n"


@pytest.fixture
def macros(tmp_path: Path) -> Macros:
    p = tmp_path / "macros.yaml"
    p.write_text(SHIPPED)
    return Macros(p)


def test_publish_records_the_baseline_then_rollback_returns_to_it(macros: Macros) -> None:
    with write_session() as s:
        with pytest.raises(NotFound):
            service.rollback(s, macros, author="user:lead", reason="nothing yet")
        with pytest.raises(ValidationFailed):
            service.publish(s, macros, macros.from_text(V2), author="user:lead", reason=" ")
        assert service.check(macros, macros.from_text("greet: [1]\n")) == [Problem("candidate", 1, "macros are text")]
        assert "-greet: Hello" in service.diff(s, macros, macros.from_text(V2))
        pub = service.publish(s, macros, macros.from_text(V2), author="user:lead", reason="friendlier",
                              approved_by="user:lead2")
        assert pub.changed and pub.value["greet"] == "Hi there"
        again = service.publish(s, macros, macros.from_text(V2), author="user:lead", reason="again")
        assert not again.changed and again.id == pub.id
    with read_session() as s:
        rows = service.history(s, DocumentKind.MACROS)
        assert [(r.author, r.is_active) for r in rows] == [("user:lead", True), (BASELINE_AUTHOR, False)]
        events = [(e.action, (e.after or {}).get("approved_by")) for e in s.execute(select(AuditEvent)
                                                                                    .order_by(AuditEvent.seq)).scalars()]
        assert events == [("macros.baseline", None), ("macros.publish", "user:lead2")]
    with write_session() as s:
        back = service.rollback(s, macros, author="user:lead", reason="as shipped")
        assert back.version == macros.from_text(SHIPPED).version and back.value["greet"] == "Hello"
        with pytest.raises(NotFound):
            service.rollback(s, macros, author="user:lead", reason="x", to="ffffffff")


def test_an_invalid_shipped_file_is_not_a_baseline(macros: Macros) -> None:
    macros.path.write_text("greet: [not, text]\n")
    with write_session() as s:
        service.publish(s, macros, macros.from_text(V2), author="user:lead", reason="fix the shipped file")
        assert [r.author for r in service.history(s, DocumentKind.MACROS)] == ["user:lead"]


def test_live_document_follows_files_then_publishes_and_keeps_the_last_good(macros: Macros) -> None:
    live: LiveDocument[dict] = LiveDocument(macros, lambda doc, label: macros.validate(doc, label=label))
    assert live.get()["greet"] == "Hello" and live.key[0] == "files"
    macros.path.write_text("greet: Edited\nbye: Goodbye\n")
    assert live.get()["greet"] == "Edited"  # the file is in force until something is published
    with write_session() as s:
        service.publish(s, macros, macros.from_text(V2), author="user:lead", reason="r")
    assert live.get()["greet"] == "Hi there" and live.key[0] == "db"
    assert live.refresh() is False  # same version: nothing rebuilt
    with write_session() as s:  # an invalid version made active behind validation's back is refused
        row = service.active_row(s, DocumentKind.MACROS)
        assert row is not None
        row.version, row.content = "broken", "greet: [1]\n"
    assert live.get()["greet"] == "Hi there" and "macros are text" in (live.last_error or "")


def test_live_document_without_a_valid_source_raises_or_falls_back(macros: Macros) -> None:
    macros.path.write_text(yaml.safe_dump({"greet": [1]}))
    build = lambda doc, label: macros.validate(doc, label=label)  # noqa: E731
    with pytest.raises(PolicyFileError):
        LiveDocument(macros, build, use_db=False).get()
    assert LiveDocument(macros, build, use_db=False, fallback=dict).get() == {}
