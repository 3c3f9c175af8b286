"""Normalised intake: cases, threading, duplicates, quarantine, attachments, and the import CLI contract."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.intake import service
from casemgr.intake.models import Attachment, Message, QuarantinedMessage
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild


def mail(mid: str | None, subject: str = "My card was charged twice", *, to: str = "complaints@example.com",
         sender: str = "Ann Lee <ann@example.org>", extra: str = "", body: str = "Please refund me.") -> bytes:
    head = f"From: {sender}\nTo: {to}\nSubject: {subject}\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n"
    if mid:
        head += f"Message-ID: {mid}\n"
    return (head + extra + "\n" + body + "\n").encode()


def count(model: type) -> int:
    with read_session() as s:
        stmt = select(func.count()).select_from(model)
        if model is Message:  # inbound only: acknowledgements are outbound Message rows
            stmt = stmt.where(Message.direction == "inbound")
        return int(s.execute(stmt).scalar_one())


def test_shared_corpus_every_file_is_a_case_or_quarantined(shared_eml: list[Path]) -> None:
    results = [service.ingest_raw(p.read_bytes(), channel="import", source=str(p)) for p in shared_eml]
    statuses = [r.status for r in results]
    assert set(statuses) <= {"case", "quarantined"}
    assert count(Case) == statuses.count("case") == count(Message)
    assert count(QuarantinedMessage) == statuses.count("quarantined")
    assert statuses.count("case") + statuses.count("quarantined") == len(shared_eml)
    with read_session() as s:
        for q in s.execute(select(QuarantinedMessage)).scalars():
            assert q.reason and q.raw is not None  # nothing dropped: the raw bytes are kept
    # A second import recognises everything: no new case, no new quarantine record.
    again = [service.ingest_raw(p.read_bytes(), channel="import", source=str(p)) for p in shared_eml]
    assert [r.status for r in again] == ["duplicate"] * len(statuses)
    assert [r.quarantine_id for r in again] == [r.quarantine_id for r in results]  # names the quarantine record
    assert count(Case) == statuses.count("case") and count(QuarantinedMessage) == statuses.count("quarantined")


def test_new_message_opens_routed_case_with_audit_and_ai_handoff() -> None:
    r = service.ingest_raw(mail("<m1@example.org>"), channel="email", envelope_to=["complaints@example.com"])
    assert r.status == "case" and r.reference == f"CMP-{r.case_id}"
    with read_session() as s:
        case = s.get(Case, r.case_id)
        assert case is not None and case.channel == "email" and case.subject == "My card was charged twice"
        assert case.queue and case.rules_result is not None
        actions = [e.action for e in s.execute(select(AuditEvent).where(AuditEvent.case_id == case.id)).scalars()]
        assert "case.created" in actions and "message.received" in actions
        msg = s.execute(select(Message).where(Message.case_id == case.id, Message.direction == "inbound")).scalar_one()
        assert msg.raw == mail("<m1@example.org>") and msg.sender == "ann@example.org"
        kinds = {j.kind for j in s.execute(select(Job)).scalars()}
        assert "mail.send" in kinds  # the acknowledgement
        # Enrichment was handed off (inline by governance, or as a queued job): never lost, never blocking.
        assert case.ai_status != "pending" or "ai.enrich" in kinds


def test_contract_address_opens_contract_case() -> None:
    r = service.ingest_raw(mail("<c1@x>", to="legal@example.com"), envelope_to=["legal@example.com"])
    with read_session() as s:
        assert s.get(Case, r.case_id).case_type == "contract"  # type: ignore[union-attr]


def test_duplicate_message_id_is_stored_once() -> None:
    first = service.ingest_raw(mail("<dup@x>"))
    second = service.ingest_raw(mail("<dup@x>", extra="Received: from elsewhere\n"))
    assert second.status == "duplicate" and second.case_id == first.case_id
    assert count(Message) == 1 and count(Case) == 1


def test_no_message_id_dedupes_by_content() -> None:
    a = service.ingest_raw(mail(None))
    b = service.ingest_raw(b"Received: by relay\n" + mail(None))
    assert a.status == "case" and b.status == "duplicate" and count(Case) == 1


def test_reply_threads_by_in_reply_to_references_and_subject() -> None:
    first = service.ingest_raw(mail("<t1@x>"))
    with read_session() as s:
        v1 = s.get(Case, first.case_id).version  # type: ignore[union-attr]
    by_header = service.ingest_raw(mail("<t2@x>", "Re: anything", extra="In-Reply-To: <t1@x>\n"))
    by_refs = service.ingest_raw(mail("<t3@x>", "Re: x", extra="References: <nope@x> <t2@x>\n"))
    by_subject = service.ingest_raw(mail("<t4@x>", f"Re: still waiting [CMP-{first.case_id}]"))
    by_case = service.ingest_raw(mail("<t5@x>", f"about [CASE-{first.case_id}]"))
    unknown = service.ingest_raw(mail("<t6@x>", "Re: [CMP-99999]"))
    for r in (by_header, by_refs, by_subject, by_case):
        assert (r.status, r.case_id) == ("appended", first.case_id)
    assert unknown.status == "case" and unknown.case_id != first.case_id
    with read_session() as s:
        case = s.get(Case, first.case_id)
        assert case is not None and case.version == v1 + 4
        appended = s.execute(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                      AuditEvent.action == "message.appended")
                             .order_by(AuditEvent.seq)).scalars().all()
        assert [e.after["thread_by"] for e in appended] == ["in-reply-to", "references", "subject-reference",
                                                             "subject-reference"]


def test_attachments_are_content_addressed_and_never_extracted(fresh_db: Path) -> None:
    zipbytes = b"PK\x03\x04" + b"\x00" * 64
    import base64

    z = base64.b64encode(zipbytes).decode()
    raw = mail("<att@x>", extra='MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
               body=f"--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/zip\n"
                    f"Content-Disposition: attachment; filename=\"../../../tmp/evil.zip\"\n"
                    f"Content-Transfer-Encoding: base64\n\n{z}\n--b\nContent-Type: application/zip\n"
                    f"Content-Disposition: attachment; filename=\"copy.zip\"\nContent-Transfer-Encoding: base64"
                    f"\n\n{z}\n--b--")
    r = service.ingest_raw(raw)
    assert r.status == "case"
    with read_session() as s:
        atts = s.execute(select(Attachment).order_by(Attachment.id)).scalars().all()
    assert [a.filename for a in atts] == ["evil.zip", "copy.zip"]
    assert atts[0].sha256 == atts[1].sha256 and atts[0].size == len(zipbytes)
    stored = list((fresh_db / "attachments").rglob("*"))
    files = [p for p in stored if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == zipbytes and files[0].name == atts[0].sha256
    assert not (Path("/tmp") / "evil.zip").exists()


def test_oversized_message_is_quarantined_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_MAX_MESSAGE_BYTES", "1000")
    rebuild()
    r = service.ingest_raw(mail("<big@x>", body="x" * 5000), source="big.eml")
    assert r.status == "quarantined" and "over the limit of 1000 bytes" in (r.reason or "")
    assert count(Case) == 0


def test_quarantine_reprocess_with_force_and_discard() -> None:
    no_sender = service.ingest_raw(b"To: complaints@example.com\nSubject: who am I\n\nhello\n")
    bounce = service.ingest_raw(mail("<b@x>", sender="MAILER-DAEMON@relay.example.net", subject="Undeliverable"))
    assert no_sender.status == bounce.status == "quarantined"
    assert "no usable sender" in (no_sender.reason or "") and "bounce" in (bounce.reason or "")
    with read_session() as s:
        assert len(service.list_quarantine(s)) == 2
    plain = service.reprocess_quarantined(no_sender.quarantine_id, "user:admin")  # type: ignore[arg-type]
    assert plain.status == "quarantined"  # same verdict without force; still one record
    assert count(QuarantinedMessage) == 2
    forced = service.reprocess_quarantined(no_sender.quarantine_id, "user:admin", force=True)  # type: ignore[arg-type]
    assert forced.status == "case"
    with write_session() as s:
        service.discard_quarantined(s, bounce.quarantine_id, "user:admin")  # type: ignore[arg-type]
    with read_session() as s:
        assert service.list_quarantine(s) == []
        q = service.get_quarantined(s, no_sender.quarantine_id)  # type: ignore[arg-type]
        assert (q.status, q.case_id, q.resolved_by) == ("reprocessed", forced.case_id, "user:admin")
        actions = {e.action for e in s.execute(select(AuditEvent)).scalars()}
    assert {"intake.quarantined", "quarantine.reprocessed", "quarantine.discarded"} <= actions


def test_storage_failure_propagates_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from casemgr.intake import storage

    def broken(data: bytes) -> tuple[str, str]:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(service, "store_blob", broken)
    raw = mail("<fail@x>", extra='Content-Type: multipart/mixed; boundary="b"\n',
               body="--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/pdf\n\n%PDF\n--b--")
    with pytest.raises(OperationalError):
        service.ingest_raw(raw)
    assert count(Case) == count(Message) == count(QuarantinedMessage) == 0
    monkeypatch.setattr(service, "store_blob", storage.store_blob)
    assert service.ingest_raw(raw).status == "case" and count(Case) == 1


def test_cli_eml_json_contract(shared_eml: list[Path], tmp_path: Path) -> None:
    from casemgr.cli import app

    extra = tmp_path / "reply.eml"
    extra.write_bytes(mail("<cli-reply@x>", "Re: x", extra="In-Reply-To: <791407.263728.a23f87@y.ewreqr.org>\n"))
    files = [*map(str, shared_eml), str(extra), str(shared_eml[0])]
    res = CliRunner().invoke(app, ["intake", "eml", *files, "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [x["file"] for x in lines] == files
    for x in lines:
        assert set(x) == {"file", "status", "case_id", "reason"}
        assert x["status"] in {"case", "appended", "duplicate", "quarantined"}
        assert (x["case_id"] is None) == (x["status"] == "quarantined")
        if x["status"] == "quarantined":
            assert x["reason"]
    assert lines[-2]["status"] == "appended" and lines[-1]["status"] == "duplicate"


def test_cli_mbox(tmp_path: Path) -> None:
    from casemgr.cli import app

    path = tmp_path / "box.mbox"
    box = mailbox.mbox(str(path))
    box.add(mail("<mb1@x>"))
    box.add(mail("<mb2@x>", "Re: y", extra="In-Reply-To: <mb1@x>\n"))
    box.add(b"From: \nSubject: \n\n")
    box.close()
    res = CliRunner().invoke(app, ["intake", "mbox", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["status"] for x in res.stdout.strip().splitlines()] == ["case", "appended", "quarantined"]


def test_zip_bomb_is_stored_compressed_and_never_opened(fresh_db: Path) -> None:
    import base64
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.bin", b"\0" * (20 * 1024 * 1024))
    data = buf.getvalue()
    assert len(data) < 100_000
    raw = mail("<bomb@x>", extra='MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
               body=f"--b\nContent-Type: text/plain\n\nsee zip\n--b\nContent-Type: application/zip; name=b.zip\n"
                    f"Content-Transfer-Encoding: base64\n\n{base64.b64encode(data).decode()}\n--b--")
    assert service.ingest_raw(raw).status == "case"
    with read_session() as s:
        att = s.execute(select(Attachment)).scalar_one()
    assert att.size == len(data) and att.content_type == "application/zip"
    total = sum(p.stat().st_size for p in (fresh_db / "attachments").rglob("*") if p.is_file())
    assert total == len(data)  # only the compressed bytes: nothing was extracted


def test_invalid_utf8_and_control_characters_are_survived() -> None:
    raw = (b"From: a@example.org\nSubject: =?utf-8?b?" + __import__("base64").b64encode(b"bad \xff\xfe subject")
           + b"?=\nMessage-ID: <u8@x>\nContent-Type: text/plain; charset=utf-8\n\nbroken \xc3\x28 utf8 \x1b[31m red\n")
    r = service.ingest_raw(raw)
    assert r.status == "case"
    with read_session() as s:
        msg = s.execute(select(Message).where(Message.message_id == "<u8@x>")).scalar_one()
    assert "\x1b" not in msg.body_text and "broken" in msg.body_text and "utf8" in msg.body_text
    assert "subject" in msg.subject
