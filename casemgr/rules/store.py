"""Published rule sets (kind 'rules' in casemgr.documents): validate, publish, roll back, list, load active.

A version is the content hash of all rules files. Publishing, rollback, history, the shipped baseline and the
audit events are the generic versioned-document ones; this module says what a rule set is (RulesDocument) and
keeps the rules-flavoured API the CLI, the HTTP routes and the governance pages use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from casemgr.documents import service as documents
from casemgr.documents.document import Document, DocumentType
from casemgr.documents.enums import DocumentKind
from casemgr.documents.models import PolicyVersion
from casemgr.errors import DomainError
from casemgr.policyfile import PolicyFileError, Problem
from casemgr.rules.compiler import CompiledRuleSet, compile_ruleset
from casemgr.rules.engine import DurableEngine
from casemgr.rules.schema import RuleSource, load_ruleset

KIND = DocumentKind.RULES


class RulesStoreError(Exception):
    pass


@dataclass
class PublishResult:
    version: str
    id: int
    changed: bool
    diff: str


def files_dir() -> Path:
    from casemgr.config import get_settings

    return Path(get_settings().policies_dir) / "rules"


def validate_source(source: RuleSource) -> CompiledRuleSet:
    """Parse, cross-check, compile, and register once in the engine (which checks regexes its own way).

    Raises PolicyFileError / CompileError with every problem; nothing is stored on failure.
    """
    crs = compile_ruleset(load_ruleset(source))
    try:
        DurableEngine(crs).close()
    except Exception as exc:  # the C core's own checks (e.g. a regex it cannot compile)
        first = next(iter(source.files), "?")
        raise PolicyFileError([Problem(first, 1, f"durable-rules refused the compiled ruleset: {exc}")]) from None
    return crs


class RulesDocument(DocumentType[CompiledRuleSet]):
    """All files under <policies>/rules as one versioned document."""

    kind = KIND
    row_name = "rules"

    def shipped_path(self) -> Path:
        return files_dir()

    def validate(self, doc: Document, *, label: str | None = None) -> CompiledRuleSet:
        return validate_source(source_of_document(doc))


RULES = RulesDocument()


def source_of_document(doc: Document) -> RuleSource:
    return RuleSource(files=dict(doc.files))


def document_of(source: RuleSource) -> Document:
    return Document(files=dict(sorted(source.files.items())), version=source.version)


def diff_sources(old: RuleSource | None, new: RuleSource) -> str:
    return RULES.diff(document_of(old) if old else None, document_of(new))


def active_row(session: Session) -> PolicyVersion | None:
    return documents.active_row(session, KIND)


def active_version(session: Session) -> str | None:
    """The cheap query every worker runs (at most once a second) to notice a new version."""
    return documents.active_version(session, KIND)


def source_of(row: PolicyVersion) -> RuleSource:
    return source_of_document(RULES.from_row(row))


def history(session: Session, limit: int = 50) -> list[PolicyVersion]:
    return documents.history(session, KIND, limit)


def _result(res: documents.Published) -> PublishResult:
    return PublishResult(res.version, res.id, res.changed, res.diff)


def _run(fn: Any) -> PublishResult:
    try:
        return _result(fn())
    except DomainError as exc:  # missing author/reason, unknown or ambiguous version
        raise RulesStoreError(exc.message) from None


def publish(session: Session, source: RuleSource, *, author: str, reason: str) -> PublishResult:
    return _run(lambda: documents.publish(session, RULES, document_of(source), author=author, reason=reason))


def rollback(session: Session, *, to: str | None = None, author: str, reason: str | None = None) -> PublishResult:
    """Re-activate an earlier version: `to` is a version hash (or unique prefix) or a row id; default is the
    version that was active before the current one (the shipped baseline after the first publish)."""
    return _run(lambda: documents.rollback(session, RULES, to=to, author=author, reason=reason))
