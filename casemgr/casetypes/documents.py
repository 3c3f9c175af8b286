"""Case types and SOPs as versioned documents (issue 22), through the one shared module casemgr.documents.

- `CASE_TYPES` (kind 'case-types'): policies/case-types.yaml, one file; its working form is a Registry.
- `SOPS` (kind 'sop'): every Markdown SOP / work instruction under policies/sop/ (sub-folders too) as one
  multi-file document, keyed by the path below sop/ ('complaint-triage.md', 'rules/fraud-check.md').

Both go draft -> check -> diff -> publish (reason; four eyes through casemgr.documents.changes) -> rollback
like rules and the AI policy; the shipped files are version 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from casemgr.casetypes import sop as sop_links
from casemgr.documents.document import Document, DocumentType, SingleFileType
from casemgr.documents.enums import DocumentKind
from casemgr.policyfile import PolicyFileError, Problem

if TYPE_CHECKING:
    from casemgr.casetypes.registry import Registry

CASE_TYPES_FILE = "case-types.yaml"
SOP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*\.md$")
MAX_SOP_CHARS = 200_000  # one work instruction; a bigger one is a pasted manual, not an SOP
MAX_SOP_FILES = 500


def policies_dir() -> Path:
    from casemgr.config import get_settings

    return Path(get_settings().policies_dir)


# ---------------------------------------------------------------- case types


class CaseTypesDocument(SingleFileType["Registry"]):
    kind = DocumentKind.CASE_TYPES
    row_name = CASE_TYPES_FILE
    file_name = CASE_TYPES_FILE

    def shipped_path(self) -> Path:
        return policies_dir() / CASE_TYPES_FILE

    def validate(self, doc: Document, *, label: str | None = None) -> Registry:
        from casemgr.casetypes.registry import build_registry

        # Problems name the file (case-types.yaml:LINE) for a candidate, the stored version otherwise.
        name = CASE_TYPES_FILE if label in (None, "candidate") else label
        return build_registry(doc.text, name, version=doc.version)


CASE_TYPES = CaseTypesDocument()


# ---------------------------------------------------------------- SOPs and work instructions


def sop_name(link: str | None) -> str | None:
    """'sop/x.md' or 'policies/sop/rules/x.md' -> the key below sop/ ('x.md', 'rules/x.md'); None if malformed."""
    if not link:
        return None
    rel = link.removeprefix("policies/")
    if not rel.startswith(f"{sop_links.SOP_DIR}/"):
        return None
    name = rel[len(sop_links.SOP_DIR) + 1:]
    return name if SOP_NAME_RE.match(name) and ".." not in name.split("/") else None


class SopDocument(DocumentType[dict[str, str]]):
    """All SOP files as one document. Files are read only through sop.resolve (inside policies/sop/, symbolic
    links that lead out are skipped), so nothing outside that folder can become part of a version."""

    kind = DocumentKind.SOP
    row_name = "sop"
    globs: ClassVar[tuple[str, ...]] = ("**/*.md",)

    def shipped_path(self) -> Path:
        return policies_dir() / sop_links.SOP_DIR

    def read_path(self, path: Path) -> Document:
        files: dict[str, str] = {}
        base = path.parent
        for f in sorted(path.rglob("*.md")):
            rel = f.relative_to(path).as_posix()
            real = sop_links.resolve(base, f"{sop_links.SOP_DIR}/{rel}")
            if real is None or not SOP_NAME_RE.match(rel):
                continue
            files[rel] = real.read_text(encoding="utf-8")
        if not files:
            raise PolicyFileError([Problem(str(path), 0, "no SOP (*.md) files in directory")])
        return self.make(files)

    def validate(self, doc: Document, *, label: str | None = None) -> dict[str, str]:
        problems = sop_problems(doc.files, label or "sop")
        if problems:
            raise PolicyFileError(problems)
        return dict(doc.files)


def sop_problems(files: Mapping[str, str], label: str) -> list[Problem]:
    problems: list[Problem] = []
    if not files:
        problems.append(Problem(label, 0, "an SOP version needs at least one file"))
    if len(files) > MAX_SOP_FILES:
        problems.append(Problem(label, 0, f"at most {MAX_SOP_FILES} SOP files"))
    for name, text in files.items():
        where = f"{label}:sop/{name}"
        if not SOP_NAME_RE.match(name) or ".." in name.split("/"):
            problems.append(Problem(where, 0, f"SOP file name {name!r} must be lower-case words ending in .md "
                                              "(e.g. complaint-triage.md or rules/fraud-check.md)"))
        if not isinstance(text, str) or not text.strip():
            problems.append(Problem(where, 1, "SOP file is empty"))
        elif len(text) > MAX_SOP_CHARS:
            problems.append(Problem(where, 1, f"SOP file is longer than {MAX_SOP_CHARS} characters"))
    return problems


SOPS = SopDocument()
