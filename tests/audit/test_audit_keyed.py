"""The audit chain is keyed (issue 18): someone who rewrites events and recomputes the chain with the public
hash function is caught, and an anchor kept outside the database catches even a rewrite made with the key."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from casemgr import migrate
from casemgr.audit.models import AuditEvent, AuditHead
from casemgr.cli import app as cli
from casemgr.db import read_session, write_session


@pytest.fixture
def history(agent_client):  # type: ignore[no-untyped-def]
    for i in range(4):
        case = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": f"c{i}"}).json()
        agent_client.post(f"/api/cases/{case['id']}/transitions", json={"to_stage": "triage", "version": case["version"]})
    return agent_client


def _verify(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--json", *args])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def _public_sha256(ev: AuditEvent, prev_hash: str) -> str:
    """What an attacker can compute from the source code alone: the chain's canonical form, plain SHA-256."""
    ts = ev.ts.replace(tzinfo=None).isoformat(timespec="microseconds")
    body = json.dumps([ev.seq, ts, ev.actor, ev.action, ev.case_id, ev.entity, ev.before, ev.after, prev_hash],
                      sort_keys=True, separators=(",", ":"),
                      default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    return hashlib.sha256(body.encode()).hexdigest()


def _rewrite(from_seq: int, digest) -> None:  # type: ignore[no-untyped-def]
    """Alter event `from_seq` and recompute the chain from there on with `digest(event, prev_hash)`."""
    with write_session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == from_seq).values(actor="user:mallory"))
        s.flush()
        rows = s.execute(select(AuditEvent).where(AuditEvent.seq >= from_seq - 1).order_by(AuditEvent.seq)).scalars().all()
        prev = rows[0].hash if rows[0].seq < from_seq else "0" * 64
        for ev in rows:
            if ev.seq < from_seq:
                continue
            ev.prev_hash = prev
            ev.hash = digest(ev, prev)
            prev = ev.hash
        head = s.get(AuditHead, 1)
        assert head is not None
        head.hash = prev


def test_a_rewrite_recomputed_with_the_public_hash_is_caught(history) -> None:
    """On today's main the chain is plain SHA-256, so this rewrite verifies as intact."""
    assert _verify()[0] == 0
    _rewrite(3, _public_sha256)
    code, out = _verify()
    assert code == 1 and out["first_bad_seq"] == 3 and "altered" in out["reason"]


def test_the_key_is_not_in_the_database(history) -> None:
    from casemgr.audit.service import chain_key
    from casemgr.config import get_settings
    from casemgr.db import get_engine

    secret = get_settings().secret_key_value()
    key_hex = chain_key().hex()
    with get_engine().connect() as conn:
        dump = "\n".join(str(row) for t in ("audit_events", "audit_head", "users", "web_sessions", "api_keys")
                         for row in conn.execute(text(f"SELECT * FROM {t}")))  # noqa: S608 - fixed table names
    assert secret not in dump and key_hex not in dump


def test_an_anchor_catches_a_rewrite_even_with_the_key(history, tmp_path: Path) -> None:
    from casemgr.audit.service import compute_hash

    anchor = tmp_path / "anchor.json"
    r = CliRunner().invoke(cli, ["audit", "anchor", "--out", str(anchor)])
    assert r.exit_code == 0, r.output
    mark = json.loads(anchor.read_text())
    assert mark["seq"] >= 12 and len(mark["hash"]) == 64 and mark["ts"]
    history.post("/api/cases", json={"case_type": "complaint", "subject": "after the anchor"})
    assert _verify("--anchor", str(anchor))[0] == 0
    # Someone holding the secret key rewrites event 2 and recomputes a valid keyed chain ...
    _rewrite(2, lambda ev, prev: compute_hash(ev.seq, ev.ts, ev.actor, ev.action, ev.case_id, ev.entity,
                                              ev.before, ev.after, prev))
    assert _verify()[0] == 0  # ... which the chain alone cannot tell,
    code, out = _verify("--anchor", str(anchor))
    assert code == 1 and out["first_bad_seq"] == mark["seq"] and "anchor" in out["reason"]  # but the anchor can.


def test_a_deleted_tail_before_the_anchor_is_caught(history, tmp_path: Path) -> None:
    anchor = tmp_path / "a.json"
    CliRunner().invoke(cli, ["audit", "anchor", "--out", str(anchor)])
    seq = json.loads(anchor.read_text())["seq"]
    with write_session() as s:
        s.execute(text("DELETE FROM audit_events WHERE seq >= :n"), {"n": seq - 1})
        last = s.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
        assert last is not None
        s.execute(update(AuditHead).values(seq=last.seq, hash=last.hash))
    assert _verify()[0] == 0
    code, out = _verify("--anchor", str(anchor))
    assert code == 1 and f"only {seq - 2} events" in out["reason"]


def test_anchor_files_are_write_once_and_checked(history, tmp_path: Path) -> None:
    anchor = tmp_path / "a.json"
    assert CliRunner().invoke(cli, ["audit", "anchor", "--out", str(anchor)]).exit_code == 0
    again = CliRunner().invoke(cli, ["audit", "anchor", "--out", str(anchor)])
    assert again.exit_code == 1 and "already exists" in again.output
    printed = CliRunner().invoke(cli, ["audit", "anchor"])
    assert printed.exit_code == 0 and json.loads(printed.stdout)["hash"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"seq": 3, "hash": "nothex"}')
    r = CliRunner().invoke(cli, ["audit", "verify", "--anchor", str(bad)])
    assert r.exit_code == 2 and f"{bad}:1" in r.output and "hash" in r.output


@pytest.mark.sqlite_only
def test_migration_rekeys_an_old_chain_and_records_how_it_found_it(history) -> None:
    cfg = migrate.alembic_config()
    command.downgrade(cfg, "0013_security_log")  # back to the plain SHA-256 chain of before issue 18
    with read_session() as s:
        events = s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        n = len(events)
        prev = "0" * 64
        for ev in events:  # the downgraded chain is a valid plain chain
            assert ev.prev_hash == prev and _public_sha256(ev, prev) == ev.hash
            prev = ev.hash
    with write_session() as s:  # tampering before the upgrade ...
        s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(actor="user:mallory"))
    migrate.upgrade()
    code, out = _verify()
    assert code == 0 and out["checked"] == n + 1
    with read_session() as s:
        marker = s.execute(select(AuditEvent).where(AuditEvent.action == "audit.chain_keyed")).scalar_one()
    assert marker.seq == n + 1 and marker.after is not None
    # ... stays on record in the re-keying event.
    assert marker.after["previous_chain_ok"] is False and marker.after["first_bad_seq"] == 4
    assert marker.after["previous_events"] == n
