"""The model view of one case type in one version, optionally against another version (issue 22)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from casemgr.casetypes.enums import DiffStatus
from casemgr.casetypes.model_svg import render
from casemgr.casetypes.modeldiff import ModelDiff, diff_model
from casemgr.casetypes.versions import in_force_version, label, registry_for, resolve
from casemgr.errors import NotFound


@dataclass
class ModelView:
    case_type: str
    type_label: str
    version: str
    version_label: str
    compare: str | None
    compare_label: str | None
    diff: ModelDiff
    svg: str


def _registry(session: Session, version: str):  # type: ignore[no-untyped-def]
    reg = registry_for(version, session)
    if reg.version != version:
        raise NotFound(f"case-types version {version} is not stored")
    return reg


def model_view(session: Session, case_type: str, *, version: str | None = None,
               compare: str | None = None) -> ModelView:
    """`version` and `compare` are references (v2, a hash prefix, 'active'); default: the version in force."""
    v = resolve(session, version) if version else in_force_version(session)
    ct = _registry(session, v).case_types.get(case_type)
    if ct is None:
        raise NotFound(f"no case type {case_type!r} in case-types version {v[:8]}")
    c = resolve(session, compare, field="compare") if compare else None
    old = _registry(session, c).case_types.get(case_type) if c and c != v else None
    diff = diff_model(ct, old)
    if c and c != v and old is None:  # the type is new in `version`: everything is added
        for s in diff.stages:
            s.status = DiffStatus.ADDED
            s.tasks = {k: DiffStatus.ADDED for k in s.tasks}
        diff.transitions = {k: DiffStatus.ADDED for k in diff.transitions}
        diff.compared = True
    vl = label(session, v)
    cl = label(session, c) if c and c != v else None
    title = f"{ct.label}: {vl}" + (f" compared with {cl}" if cl else "")
    return ModelView(ct.name, ct.label, v, vl, c if cl else None, cl, diff, render(ct, diff, title=title))
