"""The model view of one case type in one version, optionally against another version (issue 22)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from casemgr.casetypes.documents import CASE_TYPES_FILE
from casemgr.casetypes.enums import DiffStatus
from casemgr.casetypes.model_svg import render
from casemgr.casetypes.modeldiff import ModelDiff, diff_model
from casemgr.casetypes.registry import Registry, build_registry
from casemgr.casetypes.versions import in_force_version, label, registry_for, resolve
from casemgr.documents.enums import DocumentKind
from casemgr.errors import NotFound, ValidationFailed


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


def _registry(session: Session, version: str) -> Registry:
    reg = registry_for(version, session)
    if reg.version != version:
        raise NotFound(f"case-types version {version} is not stored")
    return reg


def _candidate(session: Session, request_id: int) -> Registry:
    """The case types a pending change request would publish (shown to the approver before approving)."""
    from casemgr.documents import changes

    row = changes.get(session, request_id)
    if row.kind != DocumentKind.CASE_TYPES or CASE_TYPES_FILE not in (row.files or {}):
        raise ValidationFailed(f"change request {request_id} is not a case-types change", field="request")
    return build_registry(row.files[CASE_TYPES_FILE], f"change_request:{request_id}", version=row.version,
                          check=False)


def changed_types(session: Session, request_id: int) -> list[str]:
    """The case types whose model a case-types change request changes (links for the approver)."""
    candidate = _candidate(session, request_id)
    current = _registry(session, in_force_version(session))
    return [name for name, ct in candidate.case_types.items()
            if (old := current.case_types.get(name)) is None or diff_model(ct, old).changed]


def model_view(session: Session, case_type: str, *, version: str | None = None,
               compare: str | None = None, request: int | None = None) -> ModelView:
    """`version` and `compare` are references (v2, a hash prefix, 'active'); default: the version in force.
    `request`: draw a pending change request's candidate instead (compared with the version in force)."""
    if request is not None:
        reg = _candidate(session, request)
        v = reg.version
        compare = compare or in_force_version(session)
    else:
        v = resolve(session, version) if version else in_force_version(session)
        reg = _registry(session, v)
    ct = reg.case_types.get(case_type)
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
    vl = f"change request #{request} ({v[:8]})" if request is not None else label(session, v)
    cl = label(session, c) if c and c != v else None
    title = f"{ct.label}: {vl}" + (f" compared with {cl}" if cl else "")
    return ModelView(ct.name, ct.label, v, vl, c if cl else None, cl, diff, render(ct, diff, title=title))
