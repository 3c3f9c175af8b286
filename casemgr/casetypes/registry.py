"""Loads and cross-checks case types and the organisation; refuses an invalid file with file:line.

Case types are a versioned document (casemgr.casetypes.documents.CASE_TYPES): `get_registry()` is the version
in force (the active published one, else policies/case-types.yaml), rebuilt when another version is published
(checked at most once a second). A running case keeps the version it started with: casemgr.casetypes.versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemgr import runtime
from casemgr.casetypes.schema import CaseTypeDef, CaseTypesFile, Org
from casemgr.config import get_settings
from casemgr.documents.live import LiveDocument
from casemgr.errors import ValidationFailed
from casemgr.policyfile import LoadedYaml, PolicyFileError, Problem, load_yaml_file, load_yaml_text, validate

CHECK_INTERVAL_S = 1.0  # how stale a process's view of the published case types may be


@dataclass(frozen=True)
class Registry:
    org: Org
    case_types: dict[str, CaseTypeDef]
    policies_dir: Path
    version: str = ""  # content hash of the case-types document (policy_versions.version once published)

    def get(self, name: str) -> CaseTypeDef:
        try:
            return self.case_types[name]
        except KeyError:
            raise ValidationFailed(
                f"unknown case type {name!r}; known types: {', '.join(sorted(self.case_types))}",
                field="case_type",
            ) from None

    def by_slug(self, slug: str) -> CaseTypeDef | None:
        """The type whose public form lives at /submit/<slug> (None: no such form)."""
        return next((ct for ct in self.case_types.values() if ct.public_form and ct.form_slug == slug), None)

    def for_recipients(self, recipients: list[str]) -> str:
        """The case type a mail to `recipients` opens: the first type (in file order) whose intake_addresses
        match one recipient; otherwise the first type in the file."""
        for ct in self.case_types.values():
            if any(address_matches(a, ct.intake_addresses) for a in recipients):
                return ct.name
        return next(iter(self.case_types))

    def sop_text(self, sop: str | None) -> str | None:
        """The work instruction in force (the published SOP version, else the file inside policies/sop/)."""
        from casemgr.casetypes import sops

        return sops.sop_text(sop, self.policies_dir)


def address_matches(addr: str, patterns: list[str]) -> bool:
    """`support@` matches any domain's support mailbox; a full address matches itself only."""
    addr = addr.lower()
    return any(addr == p.lower() or (p.endswith("@") and addr.startswith(p.lower())) for p in patterns)


def load_org(path: Path) -> Org:
    return validate(load_yaml_file(path), Org)


def _check_case_types(loaded: LoadedYaml, parsed: CaseTypesFile, org: Org, policies_dir: Path,
                      sop_problem: Callable[[str], str | None] | None = None) -> list[Problem]:
    if sop_problem is None:
        from casemgr.casetypes import sops

        def sop_problem(link: str) -> str | None:
            return sops.link_problem(link, policies_dir)
    problems: list[Problem] = []
    seen_types: set[str] = set()
    slugs: set[str] = set()
    for ti, ct in enumerate(parsed.case_types):
        base = ("case_types", ti)
        if ct.name in seen_types:
            problems.append(Problem(loaded.file, loaded.line_of(base + ("name",)), f"duplicate case type {ct.name!r}"))
        seen_types.add(ct.name)
        if ct.public_form and ct.form_slug in slugs:
            problems.append(Problem(loaded.file, loaded.line_of(base + ("slug",)),
                                    f"form slug {ct.form_slug!r} is used by another case type"))
        slugs.add(ct.form_slug)
        names = set(ct.stage_names)
        if ct.initial_stage and ct.initial_stage not in names:
            problems.append(
                Problem(loaded.file, loaded.line_of(base + ("initial_stage",)), f"unknown initial stage {ct.initial_stage!r}")
            )
        if ct.default_queue not in org.queue_names:
            problems.append(
                Problem(loaded.file, loaded.line_of(base + ("default_queue",)), f"unknown queue {ct.default_queue!r}")
            )
        for si, st in enumerate(ct.stages):
            sbase = base + ("stages", si)
            for k, target in enumerate(st.transitions):
                if target not in names:
                    problems.append(
                        Problem(
                            loaded.file,
                            loaded.line_of(sbase + ("transitions", k)),
                            f"stage {st.name!r}: transition to unknown stage {target!r} (stages: {', '.join(ct.stage_names)})",
                        )
                    )
            if st.owner_role and st.owner_role not in org.role_names:
                problems.append(
                    Problem(loaded.file, loaded.line_of(sbase + ("owner_role",)), f"unknown role {st.owner_role!r}")
                )
            for k, task in enumerate(st.tasks):
                tloc = sbase + ("tasks", k)
                if task.role and task.role not in org.role_names:
                    problems.append(Problem(loaded.file, loaded.line_of(tloc + ("role",)), f"unknown role {task.role!r}"))
                why = sop_problem(task.sop) if task.sop else None
                if why:
                    problems.append(Problem(loaded.file, loaded.line_of(tloc + ("sop",)), why))
            if not st.final and not st.transitions:
                problems.append(
                    Problem(loaded.file, loaded.line_of(sbase), f"stage {st.name!r} is not final but has no transitions")
                )
        for fi, fd in enumerate(ct.fields):
            if fd.type == "enum" and not fd.choices:
                problems.append(
                    Problem(loaded.file, loaded.line_of(base + ("fields", fi)), f"enum field {fd.name!r} needs choices")
                )
    return problems


def _registry_of(loaded: LoadedYaml, policies_dir: Path, version: str, *, check: bool) -> Registry:
    org = load_org(policies_dir / "org.yaml")
    parsed = validate(loaded, CaseTypesFile)
    problems = _check_case_types(loaded, parsed, org, policies_dir) if check else []
    if problems:
        raise PolicyFileError(problems)
    return Registry(org=org, case_types={ct.name: ct for ct in parsed.case_types}, policies_dir=policies_dir,
                    version=version)


def load_registry(policies_dir: Path | None = None, case_types_file: Path | None = None) -> Registry:
    """The case types of a file on disk (the shipped file by default), fully checked."""
    from casemgr.casetypes.documents import CASE_TYPES

    policies_dir = policies_dir or get_settings().policies_dir
    loaded = load_yaml_file(case_types_file or policies_dir / "case-types.yaml")
    text = Path(loaded.file).read_text(encoding="utf-8")
    return _registry_of(loaded, policies_dir, CASE_TYPES.from_text(text).version, check=True)


def build_registry(text: str, label: str, *, version: str, check: bool = True) -> Registry:
    """The case types of one version's text. `check=False` skips the cross-checks against today's org.yaml and
    SOPs: a running case's pinned version was checked when it was published and must stay readable."""
    policies_dir = Path(get_settings().policies_dir)
    return _registry_of(load_yaml_text(text, label), policies_dir, version, check=check)


def _build(doc: Any, label: str) -> Registry:
    return build_registry(doc.text, label, version=doc.version)


def new_live_registry() -> LiveDocument[Registry]:
    """The context's live case types (casemgr.runtime.Runtime.case_types)."""
    from casemgr.casetypes.documents import CASE_TYPES

    return LiveDocument(CASE_TYPES, _build, interval_s=CHECK_INTERVAL_S)


def live_registry() -> LiveDocument[Registry]:
    return runtime.current().case_types


def get_registry() -> Registry:
    """The case types in force now (published version, else the shipped file), for new cases and pages."""
    return live_registry().get()


def refresh_registry(session: Any | None = None) -> Registry:
    """Look for a newly published version now (after a publish in this process), not within the second."""
    live = live_registry()
    live.refresh(session, force=True)
    return live.get(session)


def extracts_contracts(case_type: str | None) -> bool:
    """Whether the type's YAML switches contract extraction on (`ai: {extract_contract: true}`); unknown: no."""
    ct = get_registry().case_types.get(case_type or "")
    return bool(ct and ct.ai.extract_contract)
