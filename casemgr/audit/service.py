"""Append audit events to a keyed hash chain, verify the chain, anchor its head, export it.

Each event's hash covers its content and the previous event's hash, so an update, delete or reorder of the
table breaks the chain at the first bad event. The chain head row is locked while appending: that serialises
writers (PostgreSQL: row lock; SQLite: writes already run under BEGIN IMMEDIATE) and reveals a deleted tail.

The hash is an HMAC-SHA256 keyed from the secret key (CASEMGR_SECRET_KEY / _FILE, or the data dir's
secret.key), which is never stored in the database (issue 18): someone who can write the database but not
read the key cannot rewrite events and recompute a chain that `casemgr audit verify` accepts. Chains written
before the key was introduced were re-hashed by migration 0014, which also appended an `audit.chain_keyed`
event holding the old head hash and whether the old chain verified then. Against someone who also holds the
key, an anchor helps: `casemgr audit anchor` prints the head (seq, hash, time) for write-once storage and
`casemgr audit verify --anchor FILE` proves that nothing up to it changed since.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import IO, Any

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from casemgr import csvsafe, jsontext
from casemgr.audit.models import AuditEvent, AuditHead
from casemgr.clock import now
from casemgr.db import insert_rows, table_of

GENESIS = "0" * 64


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def canonical(value: Any) -> Any:
    """JSON round trip: the hashed form must equal what the database returns later (the columns' encoder)."""
    return jsontext.round_trip(value, _json_default)


def _ts_text(ts: datetime) -> str:
    # Microsecond precision and no offset: identical on SQLite and PostgreSQL after a round trip.
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds")


CHAIN_KEY_LABEL = b"casemgr-audit-chain-v2"


@lru_cache(maxsize=4)
def _derive_key(secret: str) -> bytes:
    # A key of its own for the chain, derived from the secret key: the session-signing key is never used as is.
    return hmac.new(secret.encode("utf-8"), CHAIN_KEY_LABEL, hashlib.sha256).digest()


_chain_keys: tuple[Any, bytes] | None = None  # (the settings it was read from, the key)


def chain_key() -> bytes:
    """The chain's HMAC key, read once per settings object: the default key lives in a file (the data dir's
    secret.key) and reading it for every batch of a group commit was 3% of the writer's CPU (issue 23)."""
    global _chain_keys
    from casemgr.config import get_settings

    settings = get_settings()
    cached = _chain_keys
    if cached is not None and cached[0] is settings:
        return cached[1]
    key = _derive_key(settings.secret_key_value())
    _chain_keys = (settings, key)
    return key


def event_body(
    seq: int, ts: datetime, actor: str, action: str, case_id: int | None, entity: str | None,
    before: Any, after: Any, prev_hash: str,
) -> bytes:
    """The canonical bytes an event's hash covers."""
    return json.dumps(
        [seq, _ts_text(ts), actor, action, case_id, entity, before, after, prev_hash],
        sort_keys=True,
        separators=(",", ":"),
        default=_json_default,
    ).encode("utf-8")


def unkeyed_hash(*args: Any) -> str:
    """The chain's hash before issue 18 (plain SHA-256, computable by anyone); used only to check old chains."""
    return hashlib.sha256(event_body(*args)).hexdigest()


def compute_hash(
    seq: int, ts: datetime, actor: str, action: str, case_id: int | None, entity: str | None,
    before: Any, after: Any, prev_hash: str, *, key: bytes | None = None,
) -> str:
    body = event_body(seq, ts, actor, action, case_id, entity, before, after, prev_hash)
    return hmac.new(key or chain_key(), body, hashlib.sha256).hexdigest()


@dataclass
class PendingEvent:
    """An event to append with append_events (the same content record() takes)."""

    actor: str
    action: str
    case_id: int | None = None
    entity: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    ts: datetime | None = None


def chained_row(seq: int, prev_hash: str, ev: PendingEvent, key: bytes | None = None) -> dict[str, Any]:
    """The audit_events row for `ev` at chain position `seq` after `prev_hash` (content canonical, hash set)."""
    ts = ev.ts or now()
    before = canonical(ev.before) if ev.before is not None else None
    after = canonical(ev.after) if ev.after is not None else None
    digest = compute_hash(seq, ts, ev.actor, ev.action, ev.case_id, ev.entity, before, after, prev_hash, key=key)
    return {"seq": seq, "ts": ts, "actor": ev.actor, "action": ev.action, "case_id": ev.case_id,
            "entity": ev.entity, "before": before, "after": after, "prev_hash": prev_hash, "hash": digest}


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    case_id: int | None = None,
    entity: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (same commit as the change it describes)."""
    head = _locked_head(session)
    row = chained_row(head.seq + 1, head.hash, PendingEvent(actor, action, case_id, entity, before, after, at))
    event = AuditEvent(**row)
    session.add(event)
    head.seq = row["seq"]
    head.hash = row["hash"]
    # No flush here: the unit of work writes the events (one batched INSERT) and the head at the next query or
    # at commit. An intake writes 3-4 events; a flush per event was a fifth of its CPU (issue 10 profile).
    return event


# Built once: SQLAlchemy computes a statement's cache key per statement object (batch writers run these per batch).
_HEAD = table_of(AuditHead)
_HEAD_FOR_UPDATE = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_HEAD_UPDATE = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))


def append_events(session: Session, events: Sequence[PendingEvent]) -> None:
    """Append many events in the caller's transaction: one locked head read, one multi-row INSERT, one update.

    For batch writers (the intake group commit). Mixing it with record() in one transaction is allowed:
    pending ORM events are flushed first and the cached head is dropped afterwards.
    """
    if not events:
        return
    session.flush()
    head = session.execute(_HEAD_FOR_UPDATE).one_or_none()
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
    rows = []
    key = chain_key()
    for ev in events:
        seq += 1
        rows.append(chained_row(seq, prev, ev, key))
        prev = rows[-1]["hash"]
    insert_rows(session, table_of(AuditEvent), rows)
    if head is None:
        session.execute(insert(AuditHead.__table__).values(id=1, seq=seq, hash=prev))
    else:
        session.execute(_HEAD_UPDATE, {"new_seq": seq, "new_hash": prev})
    cached = session.info.pop("_audit_head", None)
    if cached is not None and cached[1] in session:
        session.expire(cached[1])


def _locked_head(session: Session) -> AuditHead:
    """The chain head, locked once per transaction (PostgreSQL row lock; SQLite runs under BEGIN IMMEDIATE).

    Later events in the same transaction reuse it instead of selecting it again. After a rolled-back savepoint
    SQLAlchemy expires the head, so its next use reloads the committed state.
    """
    txn = session.get_transaction()
    cached = session.info.get("_audit_head")
    if cached is not None and cached[0] is txn and txn is not None and txn.is_active and cached[1] in session:
        return cached[1]
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    session.info["_audit_head"] = (session.get_transaction(), head)
    return head


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def iter_events(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)
        ).scalars().all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


@dataclass(frozen=True)
class Anchor:
    """The chain head at one moment, kept outside the database (write-once storage)."""

    seq: int
    hash: str
    ts: str | None = None
    anchored_at: str | None = None

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "ts": self.ts, "anchored_at": self.anchored_at,
                           "chain": "hmac-sha256"}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        """Raises ValueError naming what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object with seq and hash")
        seq, digest = data.get("seq"), data.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq must be a non-negative integer")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("hash must be 64 lower-case hex digits")
        return cls(seq, digest, data.get("ts"), data.get("anchored_at"))


def anchor(session: Session) -> Anchor:
    head = session.get(AuditHead, 1)
    seq, digest = (head.seq, head.hash) if head is not None else (0, GENESIS)
    ev = session.get(AuditEvent, seq) if seq else None
    return Anchor(seq, digest, ev.ts.isoformat() if ev is not None else None, now().isoformat())


def verify(session: Session, anchor: Anchor | None = None) -> VerifyResult:
    """Check every link and keyed hash; with an anchor, also that the event at its seq still has its hash."""
    key = chain_key()
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    anchored = anchor is None or anchor.seq == 0
    if anchor is not None and anchor.seq == 0 and anchor.hash != GENESIS:
        return VerifyResult(False, 0, 1, "the anchor names position 0 with a hash other than the genesis hash")
    for ev in iter_events(session):
        if ev.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"event {expected_seq} is missing (next is {ev.seq})")
        if ev.prev_hash != prev_hash:
            return VerifyResult(False, checked, ev.seq, f"event {ev.seq} does not link to event {ev.seq - 1}")
        digest = compute_hash(
            ev.seq, ev.ts, ev.actor, ev.action, ev.case_id, ev.entity, ev.before, ev.after, ev.prev_hash, key=key
        )
        if not hmac.compare_digest(digest, ev.hash):
            return VerifyResult(False, checked, ev.seq, f"event {ev.seq} was altered (hash mismatch)")
        if anchor is not None and ev.seq == anchor.seq:
            if ev.hash != anchor.hash:
                return VerifyResult(False, checked, ev.seq,
                                    f"event {ev.seq} differs from the anchor: the chain up to it was rewritten")
            anchored = True
        prev_hash = ev.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return VerifyResult(
            False, checked, checked + 1 if head.seq > checked else head.seq,
            f"chain head says {head.seq} events ending in {head.hash[:12]}, table holds {checked}",
        )
    if not anchored:
        assert anchor is not None
        return VerifyResult(False, checked, anchor.seq,
                            f"the anchor names event {anchor.seq} but the chain holds only {checked} events")
    return VerifyResult(True, checked)


EXPORT_FIELDS = ["seq", "ts", "actor", "action", "case_id", "entity", "before", "after", "prev_hash", "hash"]


def export_rows(session: Session) -> Iterator[dict[str, Any]]:
    for ev in iter_events(session):
        yield {
            "seq": ev.seq, "ts": ev.ts.isoformat(), "actor": ev.actor, "action": ev.action,
            "case_id": ev.case_id, "entity": ev.entity, "before": ev.before, "after": ev.after,
            "prev_hash": ev.prev_hash, "hash": ev.hash,
        }


def export(session: Session, fmt: str, out: IO[str]) -> int:
    n = 0
    if fmt == "jsonl":
        for row in export_rows(session):
            out.write(json.dumps(row, sort_keys=True) + "\n")
            n += 1
    elif fmt == "csv":
        writer = csvsafe.DictWriter(out, fieldnames=EXPORT_FIELDS)  # formulas neutralised
        writer.writeheader()
        for row in export_rows(session):
            row["before"] = json.dumps(row["before"], sort_keys=True) if row["before"] is not None else ""
            row["after"] = json.dumps(row["after"], sort_keys=True) if row["after"] is not None else ""
            writer.writerow(row)
            n += 1
    else:
        raise ValueError(f"unknown format {fmt!r}; use jsonl or csv")
    return n


def events_for_case(session: Session, case_id: int, *, limit: int | None = None, offset: int = 0
                    ) -> list[Any]:
    """A case's events in chain order, as read-only records with the audit_events columns as attributes: every
    case page reads them, and ORM loading (instances, identity map) was most of that read's CPU (issue 23)."""
    events = table_of(AuditEvent)
    return list(session.execute(select(*events.columns).where(events.c.case_id == case_id)
                                .order_by(events.c.seq).offset(offset).limit(limit)).all())
