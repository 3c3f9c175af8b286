"""Which category model is in force: the versioned document kind `ai-model` (casemgr.documents).

The document is a small YAML pointer: the artefact (bundled in the package, or a candidate in the data dir),
its version and the sha256 of its bytes. Before anything is activated the bundled artefact is in force (the
shipped state, recorded as version 1 on the first activation, so rollback to it works). Validation loads
nothing heavy: the file must exist and its bytes must hash to the recorded sha256, so a pointer can never
activate a model other than the one the governance leads approved (nor one deleted since: rollback refuses).

The local provider asks `active_category_path()` (casemgr.ai.providers.local): a cheap active-version check
at most every CHECK_S seconds, per process, like every LiveDocument.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from casemgr import runtime
from casemgr.documents.document import Document, SingleFileType
from casemgr.documents.enums import DocumentKind
from casemgr.documents.live import LiveDocument
from casemgr.policyfile import PolicyFileError, Problem, load_yaml_text, validate

log = logging.getLogger(__name__)
KIND = DocumentKind.AI_MODEL
FILE_NAME = "ai-model.yaml"
BUNDLED = "bundled"
CANDIDATES = "candidates"
CHECK_S = 2.0


class ModelPointer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: Literal["category"] = "category"
    version: str = Field(pattern=r"^[0-9a-f]{12}$")
    artifact: str = Field(pattern=r"^(bundled|candidates)/[A-Za-z0-9_.-]+\.joblib$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    holdout_macro_f1: float | None = None
    trained_on_examples: int | None = None


def _bundled_dir() -> Path:
    from casemgr.ai.classifier import bundled_artifact

    return bundled_artifact().parent


def resolve(artifact: str) -> Path:
    """The file a pointer's `artifact` names (bundled/<name> in the package, candidates/<name> in the data dir)."""
    from casemgr.learning.store import models_dir

    where, _, name = artifact.partition("/")
    return (_bundled_dir() if where == BUNDLED else models_dir()) / name


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pointer_text(path: Path, *, source: str, holdout_macro_f1: float | None = None,
                 trained_on_examples: int | None = None) -> str:
    """The YAML of a pointer to the artefact at `path` (its version from the metadata beside it)."""
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    version = str(meta.get("version") or path.stem.rsplit("-", 1)[-1])
    fields: dict[str, object] = {"target": "category", "version": version, "artifact": f"{source}/{path.name}",
                                 "sha256": sha256_of(path)}
    if holdout_macro_f1 is not None:
        fields["holdout_macro_f1"] = holdout_macro_f1
    if trained_on_examples is not None:
        fields["trained_on_examples"] = trained_on_examples
    # safe_dump, not f-strings: a content hash may be all digits (about 1 in 280 versions) or look like 0b1010…,
    # which YAML reads back as a number, and the pointer then failed its own validation (422 on request). The
    # dumper quotes exactly those and leaves every other value plain, so existing pointers keep their text.
    return ("# Category classifier in force (casemgr.learning). Changed only through a change request.\n"
            + yaml.safe_dump(fields, sort_keys=False, width=1000, allow_unicode=True))


class AIModelDocument(SingleFileType[Path]):
    kind = KIND
    row_name = FILE_NAME
    file_name = FILE_NAME

    def shipped_path(self) -> Path:
        from casemgr.ai.classifier import bundled_artifact

        return bundled_artifact()

    def read_path(self, path: Path) -> Document:
        if path.suffix == ".joblib":  # the shipped state: a pointer to the bundled artefact
            try:
                return self.from_text(pointer_text(path, source=BUNDLED))
            except OSError as exc:
                raise PolicyFileError([Problem(str(path), 0, f"cannot read the bundled model: {exc}")]) from None
        return super().read_path(path)

    def parse(self, doc: Document, *, label: str | None = None) -> ModelPointer:
        file = label or FILE_NAME
        loaded = load_yaml_text(doc.text, file)
        if not isinstance(loaded.data, dict):
            raise PolicyFileError([Problem(file, 1, "the model pointer must be a mapping (key: value)")])
        return validate(loaded, ModelPointer)

    def validate(self, doc: Document, *, label: str | None = None) -> Path:
        pointer = self.parse(doc, label=label)
        file = label or FILE_NAME
        path = resolve(pointer.artifact)
        if not path.is_file():
            raise PolicyFileError([Problem(file, 4, f"model artefact {pointer.artifact} is missing ({path})")])
        if sha256_of(path) != pointer.sha256:
            raise PolicyFileError([Problem(file, 5, f"model artefact {pointer.artifact} does not match its sha256")])
        return path


AI_MODEL = AIModelDocument()


def _db_in_reach() -> bool:
    """A SQLite database that was never created means no activation happened; `casemgr ai classify` and the
    benches must not create one just by asking."""
    from casemgr.config import get_settings

    settings = get_settings()
    if not settings.is_sqlite:
        return True
    return (settings.resolved_data_dir / "casemgr.sqlite3").exists()


class _LiveModel(LiveDocument[Path]):
    def _db_version(self, session):  # type: ignore[no-untyped-def]
        return super()._db_version(session) if _db_in_reach() else None


def new_live_model() -> LiveDocument[Path]:
    """The context's live model pointer (casemgr.runtime.Runtime.model)."""
    return _LiveModel(AI_MODEL, lambda doc, label: AI_MODEL.validate(doc, label=label), interval_s=CHECK_S,
                      fallback=lambda: AI_MODEL.shipped_path())


def active_category_path() -> str | None:
    """The artefact in force (the bundled one until a candidate is activated); None if even that fails."""
    try:
        path = runtime.current().model.get()
    except Exception as exc:  # noqa: BLE001 - never stop classification over the pointer: the bundled model serves
        log.error("ai-model: cannot resolve the model in force, using the bundled one: %s", exc)
        return None
    return str(path)
