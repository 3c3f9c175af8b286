"""A running case stays on the case-type version it started with (issue 22).

`cases.case_type_version` holds the content hash of the case-types document in force when the case opened
(policy_versions.version of kind 'case-types'). Everything that consults a case's type for stages,
transitions, SLA, tasks or fields asks `case_type_of(case)`, which reads that pinned version: a publish changes
new cases only, and `casemgr casetypes migrate` moves running cases on purpose.

A case with no pinned version (opened before versions existed) follows the version in force. Versions are
named by hash (or a unique prefix) or by their number: v1 is the oldest (the shipped file), counted per kind.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import or_, select, true
from sqlmodel import Session, col

from casemgr import runtime
from casemgr.cases.models import Case
from casemgr.casetypes.documents import CASE_TYPES
from casemgr.casetypes.registry import Registry, build_registry, get_registry
from casemgr.casetypes.schema import CaseTypeDef
from casemgr.documents import service as documents
from casemgr.documents.models import PolicyVersion
from casemgr.errors import ValidationFailed

log = logging.getLogger(__name__)
CACHE_SIZE = 32  # versions kept built per process (immutable content: never stale)
NUMBER_RE = re.compile(r"^v?(\d{1,5})$")

_lock = threading.Lock()


def _cache() -> OrderedDict[str, Registry]:
    """Built pinned versions, kept in the context (casemgr.runtime.Runtime.case_type_versions): a version string
    names different content in another database."""
    return runtime.current().case_type_versions


def _remember(reg: Registry) -> Registry:
    cache = _cache()
    with _lock:
        cache[reg.version] = reg
        cache.move_to_end(reg.version)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    return reg


def _row(session: Session, version: str) -> PolicyVersion | None:
    return session.execute(
        select(PolicyVersion).where(col(PolicyVersion.kind) == CASE_TYPES.kind, col(PolicyVersion.version) == version)
        .order_by(col(PolicyVersion.id).desc()).limit(1)
    ).scalar_one_or_none()


def _load(session: Session | None, version: str) -> Registry | None:
    def load(s: Session) -> Registry | None:
        row = _row(s, version)
        if row is not None:
            return build_registry(CASE_TYPES.from_row(row).text, f"policy_versions:{version}", version=version,
                                  check=False)
        shipped = CASE_TYPES.shipped()
        if shipped.version == version:
            return build_registry(shipped.text, str(CASE_TYPES.shipped_path()), version=version, check=False)
        return None

    if session is not None:
        return load(session)
    from casemgr.db import read_session

    with read_session() as s:
        return load(s)


def registry_for(version: str | None, session: Session | None = None) -> Registry:
    """The case types of `version` (None, or a version that cannot be found: the version in force)."""
    current = get_registry()
    if not version or version == current.version:
        return current
    hit = _cache().get(version)
    if hit is not None:
        return hit
    try:
        reg = _load(session, version)
    except Exception as exc:  # noqa: BLE001 - a stored version that no longer parses: the case follows today's
        log.error("case-types version %s cannot be read, using the version in force: %s", version, exc)
        reg = None
    if reg is None:
        log.warning("case-types version %s is not stored; cases pinned to it follow %s", version, current.version)
        return current
    return _remember(reg)


def _session_of(obj: Any) -> Session | None:
    from sqlalchemy.orm import object_session

    try:
        return object_session(obj)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - a draft (SimpleNamespace) has no session
        return None


def case_type_of(case: Any, session: Session | None = None) -> CaseTypeDef:
    """The definition a case runs on: its type in the version it is pinned to."""
    version = getattr(case, "case_type_version", None)
    current = get_registry()
    # The version in force needs no session: asking a draft (SimpleNamespace) for its session raises and catches
    # an SQLAlchemy error, a fifth of planning an intake (issue 23 profile).
    reg = current if not version or version == current.version else registry_for(version, session or _session_of(case))
    ct = reg.case_types.get(case.case_type)
    return ct if ct is not None else get_registry().get(case.case_type)


def stages_in_use(session: Session, limit: int = 20) -> list[tuple[Any, CaseTypeDef, Any]]:
    """(pinned-to condition, case type, stage) for every stage of every case-types version running cases may be
    on: the version in force, then the stored ones (newest first, at most `limit`). The condition selects the
    cases on that version; the one in force also takes cases with no version or one that was never stored, so
    with a single version it selects every case (as before versions existed). For the SLA scans."""
    current = get_registry()
    regs = [current]
    for row in documents.history(session, CASE_TYPES.kind, limit):
        if all(r.version != row.version for r in regs):
            reg = registry_for(row.version, session)
            if reg.version == row.version:
                regs.append(reg)
    others = [r.version for r in regs[1:]]
    pinned = col(Case.case_type_version)
    out: list[tuple[Any, CaseTypeDef, Any]] = []
    for reg in regs:
        if reg is current:
            cond = or_(pinned.is_(None), pinned.notin_(others)) if others else true()
        else:
            cond = pinned == reg.version
        out.extend((cond, ct, sd) for ct in reg.case_types.values() for sd in ct.stages)
    return out


# ---------------------------------------------------------------- naming versions


def numbered(session: Session) -> list[tuple[int, PolicyVersion]]:
    """(number, row) oldest first: v1 is the baseline (the shipped file) once anything was published."""
    rows = list(reversed(documents.history(session, CASE_TYPES.kind, documents.ROLLBACK_SCAN)))
    out: list[tuple[int, PolicyVersion]] = []
    seen: dict[str, int] = {}
    for row in rows:
        # A rollback re-activates old content under a new row: it keeps the number that content had.
        n = seen.setdefault(row.version, len(seen) + 1)
        out.append((n, row))
    return out


def number_of(session: Session, version: str | None) -> int | None:
    for n, row in numbered(session):
        if row.version == version:
            return n
    return None


def label(session: Session, version: str | None) -> str:
    """'v2 (1a2b3c4d)' for people; the hash alone when the version was never stored."""
    if not version:
        return "in force"
    rows = numbered(session)
    n = next((num for num, row in rows if row.version == version), None)
    if n is None and not rows and version == get_registry().version:
        n = 1  # nothing published yet: the shipped file in force is v1
    return f"v{n} ({version[:8]})" if n else version[:8]


def resolve(session: Session, ref: str, *, field: str = "version") -> str:
    """A version hash from 'v2' / '2' (its number), a hash or unique hash prefix, or 'active'/'shipped'."""
    ref = (ref or "").strip()
    if not ref:
        raise ValidationFailed("a version is required", field=field)
    if ref in ("active", "current"):
        return in_force_version(session)
    if ref == "shipped":
        return CASE_TYPES.shipped().version
    m = NUMBER_RE.match(ref)
    if m:
        n = int(m.group(1))
        for num, row in numbered(session):
            if num == n:
                return row.version
        if n == 1 and not numbered(session):
            return CASE_TYPES.shipped().version  # nothing published: v1 is the shipped file
        if ref.startswith("v") or len(ref) < 4:
            raise ValidationFailed(f"no case-types version {ref!r}", field=field)
    try:
        return documents.find(session, CASE_TYPES.kind, ref).version
    except documents.NoVersion:
        if CASE_TYPES.shipped().version.startswith(ref):
            return CASE_TYPES.shipped().version
        raise ValidationFailed(f"no case-types version {ref!r}", field=field) from None


def in_force_version(session: Session) -> str:
    return documents.active_version(session, CASE_TYPES.kind) or CASE_TYPES.shipped().version
