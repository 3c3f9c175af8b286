"""Published rule sets in the policy_versions table (kind='rules'): publish, rollback, list, load active.

A version is the content hash of all rules files. Exactly one row is active. Publishing or rolling back
writes a new row (author, reason, diff against the previously active version) and an audit event in the
same transaction; workers notice the new active version by polling `active_version` (see service.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlmodel import Session

from casemgr.governance import versions
from casemgr.governance.models import PolicyVersion
from casemgr.policyfile import PolicyFileError, Problem
from casemgr.rules.compiler import compile_ruleset
from casemgr.rules.engine import DurableEngine
from casemgr.rules.schema import RuleSource, load_ruleset

KIND = "rules"


class RulesStoreError(Exception):
    pass


@dataclass
class PublishResult:
    version: str
    id: int
    changed: bool
    diff: str


def validate_source(source: RuleSource) -> None:
    """Parse, cross-check, compile, and register once in the engine (which checks regexes its own way).

    Raises PolicyFileError / CompileError with every problem; nothing is stored on failure.
    """
    crs = compile_ruleset(load_ruleset(source))
    try:
        DurableEngine(crs).close()
    except Exception as exc:  # the C core's own checks (e.g. a regex it cannot compile)
        first = next(iter(source.files), "?")
        raise PolicyFileError([Problem(first, 1, f"durable-rules refused the compiled ruleset: {exc}")]) from None


def diff_sources(old: RuleSource | None, new: RuleSource) -> str:
    old_files = old.files if old else {}
    out: list[str] = []
    for name in sorted(set(old_files) | set(new.files)):
        a = old_files.get(name, "").splitlines(keepends=True)
        b = new.files.get(name, "").splitlines(keepends=True)
        out.extend(
            difflib.unified_diff(
                a, b, fromfile=f"a/{name}" if name in old_files else "/dev/null",
                tofile=f"b/{name}" if name in new.files else "/dev/null",
            )
        )
    return "".join(out)


def active_row(session: Session) -> PolicyVersion | None:
    return versions.active_row(session, KIND)


def active_version(session: Session) -> str | None:
    """The cheap query every worker runs (at most once a second) to notice a new version."""
    return versions.active_version(session, KIND)


def source_of(row: PolicyVersion) -> RuleSource:
    if row.files:
        return RuleSource(files=dict(sorted(row.files.items())))
    return RuleSource.from_bundle(row.content)


def _store(session: Session, source: RuleSource, author: str, reason: str, action: str) -> PublishResult:
    if not author.strip() or not reason.strip():
        raise RulesStoreError("author and reason are required")
    current = active_row(session)
    if current is not None and current.version == source.version:
        return PublishResult(current.version, int(current.id or 0), False, "")
    diff = diff_sources(source_of(current) if current else None, source)
    row = versions.activate(session, kind=KIND, name="rules", version=source.version, content=source.bundle(),
                            files=dict(source.files), diff=diff, author=author, reason=reason, action=action,
                            previous=current)
    return PublishResult(source.version, int(row.id or 0), True, diff)


def publish(session: Session, source: RuleSource, *, author: str, reason: str) -> PublishResult:
    validate_source(source)
    return _store(session, source, author, reason, "rules.publish")


def history(session: Session, limit: int = 50) -> list[PolicyVersion]:
    return versions.history(session, KIND, limit)


def rollback(session: Session, *, to: str | None = None, author: str, reason: str | None = None) -> PublishResult:
    """Re-activate an earlier version: `to` is a version hash (or unique prefix) or a row id; default is the
    version that was active before the current one."""
    rows = history(session, limit=1000)
    current = active_row(session)
    if current is None:
        raise RulesStoreError("no published rules version to roll back from")
    target: PolicyVersion | None = None
    if to is None:
        target = next((r for r in rows if r.id < current.id and r.version != current.version), None)  # type: ignore[operator]
        if target is None:
            raise RulesStoreError("no earlier version to roll back to")
    else:
        matches = [r for r in rows if r.version.startswith(to) or str(r.id) == to]
        found = {r.version for r in matches}
        if not matches:
            raise RulesStoreError(f"no rules version {to!r}")
        if len(found) > 1:
            raise RulesStoreError(f"version prefix {to!r} is ambiguous")
        target = matches[0]
    source = source_of(target)
    validate_source(source)  # org.yaml may have changed since; never activate an invalid set
    return _store(session, source, author, reason or f"rollback to {target.version}", "rules.rollback")
