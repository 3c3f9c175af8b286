"""audit: key the hash chain (HMAC-SHA256 from the secret key) and re-hash the existing chain once (issue 18)

Why re-key instead of a version marker: a marker saying "events before N use the old hash" lives in the
database, so whoever can rewrite events could also move the marker and fall back to the public hash. Here the
old chain is verified with the old (unkeyed) hash first, then every event is re-hashed with the key, and one
`audit.chain_keyed` event records the old head hash, the number of events and whether the old chain verified
(with the first bad position if not). Tampering before this migration stays on record in that event, and
everything after it needs the key.

The key comes from the same settings as the app (CASEMGR_SECRET_KEY, CASEMGR_SECRET_KEY_FILE or the data dir's
secret.key): run the upgrade with the same environment as the service.

Revision ID: 0014_audit_chain_keyed
Revises: 0013_security_log
Create Date: 2026-12-03 14:30:00
"""
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path, for mypy
from alembic import op

revision: str = '0014_audit_chain_keyed'
down_revision: str | Sequence[str] | None = '0013_security_log'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
BATCH = 5000
# Frozen copies of the chain's canonical form (casemgr.audit.service at this revision): a migration must not
# change meaning when the app code changes later.
events = sa.table(
    "audit_events",
    sa.column("seq", sa.Integer), sa.column("ts", sqlmodel.sql.sqltypes.UTCDateTime()),
    sa.column("actor", sa.String), sa.column("action", sa.String), sa.column("case_id", sa.Integer),
    sa.column("entity", sa.String), sa.column("before", sa.JSON), sa.column("after", sa.JSON),
    sa.column("prev_hash", sa.String), sa.column("hash", sa.String),
)
head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                sa.column("hash", sa.String))


def _default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _body(r: Any, prev_hash: str) -> bytes:
    ts = r.ts.replace(tzinfo=None).isoformat(timespec="microseconds")
    return json.dumps([r.seq, ts, r.actor, r.action, r.case_id, r.entity, r.before, r.after, prev_hash],
                      sort_keys=True, separators=(",", ":"), default=_default).encode("utf-8")


def _plain(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _keyed() -> Callable[[bytes], str]:
    from casemgr.config import get_settings

    secret = get_settings().secret_key_value().encode("utf-8")
    key = hmac.new(secret, b"casemgr-audit-chain-v2", hashlib.sha256).digest()
    return lambda body: hmac.new(key, body, hashlib.sha256).hexdigest()


def _rehash(old: Callable[[bytes], str], new: Callable[[bytes], str]) -> tuple[int, str, str, bool, int | None]:
    """Re-hash the chain in seq order; returns (events, old head, new head, old chain ok, first bad seq)."""
    conn = op.get_bind()
    old_prev, new_prev, n, ok, first_bad, last = GENESIS, GENESIS, 0, True, None, 0
    while True:
        rows = conn.execute(sa.select(events).where(events.c.seq > last).order_by(events.c.seq).limit(BATCH)).all()
        if not rows:
            break
        updates = []
        for r in rows:
            if ok and (r.seq != n + 1 or r.prev_hash != old_prev or old(_body(r, r.prev_hash)) != r.hash):
                ok, first_bad = False, n + 1
            old_prev = r.hash
            digest = new(_body(r, new_prev))
            updates.append({"k": r.seq, "p": new_prev, "h": digest})
            new_prev = digest
            n += 1
        conn.execute(events.update().where(events.c.seq == sa.bindparam("k"))
                     .values(prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")), updates)
        last = rows[-1].seq
    old_head = conn.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    if old_head is not None and ok and (old_head.seq != n or old_head.hash != old_prev):
        ok, first_bad = False, min(old_head.seq, n) + 1
    conn.execute(head.update().where(head.c.id == 1).values(seq=n, hash=new_prev))
    return n, old_prev, new_prev, ok, first_bad


def upgrade() -> None:
    keyed = _keyed()
    n, old_head, new_head, ok, first_bad = _rehash(_plain, keyed)
    if n == 0:
        return  # a new database: nothing to re-key and nothing to record
    conn = op.get_bind()
    after = {"previous_head": old_head, "previous_events": n, "previous_chain_ok": ok, "first_bad_seq": first_bad}
    row = {"seq": n + 1, "ts": datetime.now(UTC), "actor": "system:migration", "action": "audit.chain_keyed",
           "case_id": None, "entity": None, "before": None, "after": after, "prev_hash": new_head}
    row["hash"] = keyed(_body(type("R", (), row)(), new_head))
    conn.execute(events.insert().values(**row))
    conn.execute(head.update().where(head.c.id == 1).values(seq=n + 1, hash=row["hash"]))


def downgrade() -> None:
    _rehash(_keyed(), _plain)
