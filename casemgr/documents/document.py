"""A versioned document (its files and content hash) and the type that knows how to validate and store one.

Each kind of document (rules, the AI policy, later case types, SOPs, macros) is one `DocumentType`
subclass living in the package that owns the kind: it says where the shipped file(s) are, how to validate
them, and how a version is named. Everything else (publish, rollback, history, the shipped baseline, hot
reload) is generic and lives in casemgr.documents.service / .live.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from casemgr.documents.enums import DocumentKind
from casemgr.policyfile import PolicyFileError, Problem

if TYPE_CHECKING:
    from casemgr.documents.models import PolicyVersion

T = TypeVar("T")
YAML_GLOBS = ("*.yaml", "*.yml")


@dataclass(frozen=True)
class Document:
    """The content of one version: {file name: text} in name order (a single-file kind has one entry)."""

    files: Mapping[str, str]
    version: str

    @property
    def text(self) -> str:
        """The text of a single-file document."""
        return next(iter(self.files.values()), "")


def unified_diff(old: Mapping[str, str], new: Mapping[str, str], *, old_label: str | None = None,
                 new_label: str | None = None) -> str:
    """Unified diff per file; labels replace file names (single-file kinds label by version)."""
    out: list[str] = []
    for name in sorted(set(old) | set(new)):
        a = old.get(name, "").splitlines(keepends=True)
        b = new.get(name, "").splitlines(keepends=True)
        out.extend(difflib.unified_diff(
            a, b, fromfile=f"a/{old_label or name}" if name in old else "/dev/null",
            tofile=f"b/{new_label or name}" if name in new else "/dev/null",
        ))
    return "".join(out)


def path_stamp(path: Path, globs: tuple[str, ...] = YAML_GLOBS) -> tuple[Any, ...]:
    """What changes when the file(s) at `path` change: name, mtime and size (a few stat() calls)."""
    try:
        if path.is_dir():
            found = sorted({p for g in globs for p in path.glob(g)})
            return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in found)
        st = path.stat()
        return ((path.name, st.st_mtime_ns, st.st_size),)
    except OSError:
        return ()


class DocumentType(ABC, Generic[T]):
    """How one kind of document is named, read from disk, validated and stored.

    `validate` returns the kind's working form (a compiled rule set, a Policy, ...) or raises an exception
    carrying `problems` (PolicyFileError: file:line). Nothing is stored unless it passes.
    """

    kind: ClassVar[DocumentKind]
    row_name: ClassVar[str]  # policy_versions.name
    globs: ClassVar[tuple[str, ...]] = YAML_GLOBS  # the files of a directory kind (SOPs: Markdown)

    # -- identity

    def version_of(self, files: Mapping[str, str]) -> str:
        canon = json.dumps(sorted(files.items()), ensure_ascii=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]

    def make(self, files: Mapping[str, str]) -> Document:
        ordered = dict(sorted(files.items()))
        return Document(files=ordered, version=self.version_of(ordered))

    # -- validation

    @abstractmethod
    def validate(self, doc: Document, *, label: str | None = None) -> T:
        """Check the document completely; `label` names it in problems (e.g. 'candidate')."""

    # -- the shipped file(s)

    @abstractmethod
    def shipped_path(self) -> Path:
        """The file or directory under the policies dir that is in force until something is published."""

    def read_path(self, path: Path) -> Document:
        if path.is_dir():
            files = {f.name: f.read_text(encoding="utf-8") for g in self.globs for f in sorted(path.glob(g))}
            if not files:
                raise PolicyFileError([Problem(str(path), 0, "no *.yaml files in directory")])
            return self.make(files)
        try:
            return self.make({path.name: path.read_text(encoding="utf-8")})
        except FileNotFoundError:
            raise PolicyFileError([Problem(str(path), 0, "file not found")]) from None
        except UnicodeDecodeError as exc:
            raise PolicyFileError([Problem(str(path), 1, f"not valid UTF-8: {exc}")]) from None

    def shipped(self) -> Document:
        return self.read_path(self.shipped_path())

    # -- storage

    def to_row(self, doc: Document) -> tuple[str, dict[str, Any] | None]:
        """(content, files) columns of a version row."""
        bundle = json.dumps({"files": dict(doc.files)}, ensure_ascii=False, indent=1)
        return bundle, dict(doc.files)

    def from_row(self, row: PolicyVersion) -> Document:
        files = row.files if row.files else json.loads(row.content)["files"]
        return Document(files=dict(sorted(files.items())), version=row.version)

    def diff(self, old: Document | None, new: Document) -> str:
        return unified_diff(old.files if old else {}, new.files)


class SingleFileType(DocumentType[T]):
    """A kind that is one text file: stored as plain text, versioned by the hash of that text."""

    file_name: ClassVar[str]

    def version_of(self, files: Mapping[str, str]) -> str:
        text = next(iter(files.values()), "")
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def from_text(self, text: str) -> Document:
        return self.make({self.file_name: text})

    def to_row(self, doc: Document) -> tuple[str, dict[str, Any] | None]:
        return doc.text, None

    def from_row(self, row: PolicyVersion) -> Document:
        return Document(files={self.file_name: row.content}, version=row.version)

    def diff(self, old: Document | None, new: Document) -> str:
        # One file: name both sides by version, so a diff says what moved where.
        return unified_diff({self.file_name: old.text} if old else {}, {self.file_name: new.text},
                            old_label=old.version if old else None, new_label=new.version)
