"""The AI policy file (policies/ai-policy.yaml): schema, validation with file:line errors, and the active policy.

The schema is strict: unknown keys, unknown decision kinds, roles not in org.yaml, thresholds outside [0,1],
and a dozen other mistakes are refused as a whole with `file:line: reason`. The policy is a versioned
document (casemgr.documents, kind 'ai-policy'): in force is the active published version, else the file
<policies_dir>/ai-policy.yaml, and the shipped file becomes version 1 at the first publish.

An invalid candidate never replaces the active policy: `publish` validates first, and the loader keeps
the last valid version when the source turns invalid. With no valid policy at all, AI is off.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casemgr import runtime
from casemgr.documents.document import Document, SingleFileType
from casemgr.documents.enums import DocumentKind
from casemgr.documents.live import LiveDocument
from casemgr.governance import kinds
from casemgr.policyfile import LoadedYaml, PolicyFileError, Problem, load_yaml_text

log = logging.getLogger(__name__)

KIND = DocumentKind.AI_POLICY
FILE_NAME = "ai-policy.yaml"

# Every decision kind AI output can take: the registry in casemgr.governance.kinds (one file per kind).
# The required ones must be present in every policy.
REQUIRED_KINDS: tuple[str, ...] = kinds.names(required=True)
OPTIONAL_KINDS: tuple[str, ...] = kinds.names(required=False)
DECISION_KINDS: tuple[str, ...] = REQUIRED_KINDS + OPTIONAL_KINDS
PII_KINDS: tuple[str, ...] = ("email", "iban", "card", "phone")

Mode = Literal["auto", "suggest", "never"]
# A threshold in a table (by category, by case type): bounded per entry, so a problem names its exact key and line.
Threshold = Annotated[float, Field(ge=0.0, le=1.0)]
_MODE_RANK = {"never": 0, "suggest": 1, "auto": 2}
KillSwitch = Literal["normal", "suggest_only", "off"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecisionPolicy(_Strict):
    """How one decision kind is governed."""

    # The descriptions are the help text of the form editor (governance/policy_form.py): write them for people.
    mode: Mode = Field(description=(
        "auto: AI applies the outcome itself at or above the threshold; suggest: AI only proposes it and the owner "
        "role accepts or rejects; never: AI output of this kind is discarded"))
    owner: str = Field(min_length=1, description=(
        "the role that owns the outcome: it accepts or rejects suggestions (must exist in org.yaml)"))
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "the lowest model confidence (0 to 1) at which AI may apply the outcome on its own; needed in auto mode"))
    thresholds_by_category: dict[str, Threshold] = Field(default_factory=dict, description=(
        "a stricter or looser threshold for cases of one category; it wins over the case-type and default ones"))
    thresholds_by_case_type: dict[str, Threshold] = Field(default_factory=dict, description=(
        "a threshold for cases of one case type; it wins over the default threshold"))
    # In auto mode, what happens below the threshold: a human gets it as a suggestion, or it is dropped.
    below_threshold: Literal["suggest", "reject"] = Field(default="suggest", description=(
        "in auto mode, below the threshold: suggest it to the owner role, or reject (drop) it"))
    description: str = Field(default="", description="a note for people reading the policy")

    @model_validator(mode="after")
    def _auto_needs_threshold(self) -> DecisionPolicy:
        if self.mode == "auto" and self.threshold is None:
            raise ValueError("mode 'auto' needs a threshold (0..1): AI applies only at or above it")
        return self


class Limits(_Strict):
    """Amounts above which AI never decides on its own (the decision becomes a suggestion)."""

    max_refund_amount: float = Field(default=0.0, ge=0.0, description=(
        "the largest refund AI may approve on its own; higher amounts go to the owner role as a suggestion"))
    max_contract_amount: float = Field(default=0.0, ge=0.0, description=(
        "the largest contract value AI may approve on its own (0: never on its own)"))


class Stratum(_Strict):
    """A slice of auto-applied decisions sampled at its own rate (oversample low confidence, rare categories).
    Override-rate figures weight each reviewed decision by 1/rate, so they stay unbiased (service.metrics)."""

    name: str = Field(min_length=1, max_length=60, description="shown on the review dashboard")
    confidence_below: float | None = Field(default=None, ge=0.0, le=1.0,
                                           description="decisions with a confidence below this value")
    categories: list[str] = Field(default_factory=list, description="decisions on cases of these categories")
    rate: float = Field(ge=0.0, le=1.0, description="share of the matching decisions sent to review")

    @model_validator(mode="after")
    def _has_condition(self) -> Stratum:
        if self.confidence_below is None and not self.categories:
            raise ValueError("a stratum needs confidence_below or categories")
        return self


class Review(_Strict):
    """Human review of what AI applied on its own (EU AI Act Art. 14)."""

    sample_rate: float = Field(ge=0.0, le=1.0, description=(
        "share of auto-applied decisions sent to the reviewer queue (0 to 1; 0.1 = one in ten)"))
    reason_codes: list[str] = Field(min_length=1, description=(
        "the reasons a reviewer or owner can give when overriding or rejecting AI output"))
    strata: list[Stratum] = Field(default_factory=list, description=(
        "stratified sampling: a decision matching several strata gets the highest rate; others get sample_rate"))
    double_review_rate: float = Field(default=0.0, ge=0.0, le=1.0, description=(
        "share of sampled decisions that a second reviewer also judges, blind, to measure inter-reviewer "
        "agreement (Cohen's kappa on the review dashboard)"))
    quick_accept_seconds: float = Field(default=5.0, gt=0.0, le=600.0, description=(
        "an accept given faster than this counts as quick: the review dashboard shows each reviewer's share of "
        "quick accepts (a rubber-stamp signal)"))


class Providers(_Strict):
    """Which AI providers may see case text."""

    external_allowed: bool = Field(default=False, description=(
        "allow external AI providers; off: only the offline local provider sees case text"))
    redact_pii: list[Literal["email", "iban", "card", "phone"]] = Field(default_factory=list, description=(
        "personal data removed from text before an external provider sees it (required when external is allowed)"))

    @model_validator(mode="after")
    def _external_needs_redaction(self) -> Providers:
        if self.external_allowed and not self.redact_pii:
            raise ValueError("external providers are allowed but redact_pii is empty: list the PII kinds to redact")
        return self


class AIPolicy(_Strict):
    """Schema of policies/ai-policy.yaml (see docs/ai-policy.md)."""

    name: str = Field(default="ai-policy", max_length=200, description="a name for this policy, shown in its history")
    review_by: date = Field(description=(
        "the date by which the policy must be reviewed again; after it the policy shows as overdue"))
    kill_switch: KillSwitch = Field(default="normal", description=(
        "normal: the policy applies; suggest_only: every AI decision becomes a suggestion; off: no AI decisions"))
    providers: Providers = Field(default_factory=Providers, description="which AI providers may see case text")
    limits: Limits = Field(default_factory=Limits, description="amounts above which AI never decides on its own")
    review: Review = Field(description="review of auto-applied decisions: sampling and reason codes")
    decisions: dict[str, DecisionPolicy] = Field(description=(
        "for each decision kind: auto, suggest or never, the owner role and the thresholds"))

    @field_validator("kill_switch", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as the boolean false; the policy means the word.
        return "off" if value is False else value


class Policy:
    """A validated policy plus its identity (content hash) and source text."""

    def __init__(self, model: AIPolicy, text: str, source: str) -> None:
        self.model = model
        self.text = text
        self.source = source
        self.version = content_version(text)

    def __repr__(self) -> str:
        return f"Policy({self.version}, {self.source})"

    @property
    def kill_switch(self) -> str:
        return self.model.kill_switch

    def decision(self, kind: str) -> DecisionPolicy | None:
        return self.model.decisions.get(kind)

    def review_overdue(self, today: date | None = None) -> bool:
        from casemgr.clock import now

        return (today or now().date()) > self.model.review_by

    def warnings(self, today: date | None = None) -> list[str]:
        out = []
        if self.review_overdue(today):
            out.append(f"policy review_by date {self.model.review_by.isoformat()} has passed: review the policy")
        if self.kill_switch != "normal":
            out.append(f"kill switch is {self.kill_switch!r}")
        return out


def content_version(text: str) -> str:
    """The policy version is the hash of its text: same text, same version, everywhere."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _cross_check(loaded: LoadedYaml, model: AIPolicy) -> list[Problem]:
    """Checks that need other files: roles from org.yaml, categories and case types from case-types.yaml."""
    from casemgr.casetypes.registry import get_registry

    reg = get_registry()
    roles = reg.org.role_names
    case_types = set(reg.case_types)
    categories: set[str] = set()
    for ct in reg.case_types.values():
        for f in ct.fields:
            if f.name == "category" and f.choices:
                categories.update(f.choices)
    problems: list[Problem] = []

    def add(loc: tuple[Any, ...], msg: str) -> None:
        problems.append(Problem(loaded.file, loaded.line_of(loc), msg))

    for kind in model.decisions:
        if kind not in DECISION_KINDS:
            add(("decisions", kind), f"decisions.{kind}: unknown decision kind; known: {', '.join(DECISION_KINDS)}")
    missing = [k for k in REQUIRED_KINDS if k not in model.decisions]
    if missing:
        add(("decisions",), f"decisions: missing decision kind(s) {', '.join(missing)}; every required kind "
                            "must say auto, suggest or never")
    for kind, dp in model.decisions.items():
        if dp.owner not in roles:
            add(("decisions", kind, "owner"),
                f"decisions.{kind}.owner: unknown role {dp.owner!r}; roles in org.yaml: {', '.join(sorted(roles))}")
        for cat in dp.thresholds_by_category:
            if cat not in categories:
                add(("decisions", kind, "thresholds_by_category", cat),
                    f"decisions.{kind}.thresholds_by_category: unknown category {cat!r}; "
                    f"known: {', '.join(sorted(categories))}")
        for type_name in dp.thresholds_by_case_type:
            if type_name not in case_types:
                add(("decisions", kind, "thresholds_by_case_type", type_name),
                    f"decisions.{kind}.thresholds_by_case_type: unknown case type {type_name!r}; "
                    f"known: {', '.join(sorted(case_types))}")
        kind_def = kinds.get(kind)
        if kind_def is not None and _MODE_RANK[dp.mode] > _MODE_RANK[kind_def.max_mode]:
            add(("decisions", kind, "mode"),
                f"decisions.{kind}.mode: {dp.mode!r} is not allowed for {kind}; at most {kind_def.max_mode!r} "
                "(a person acts on it)")
        if dp.mode == "never" and (dp.threshold is not None or dp.thresholds_by_category):
            add(("decisions", kind, "threshold"),
                f"decisions.{kind}: mode 'never' with a threshold is contradictory; remove the threshold")
    codes = model.review.reason_codes
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        add(("review", "reason_codes"), f"review.reason_codes: duplicate code(s) {', '.join(dupes)}")
    return problems


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Line of each key (not of its value): `decisions.close_case` points at the `close_case:` line."""
    import yaml

    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (path + (k.value,))
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    try:
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    except yaml.YAMLError:
        pass
    return lines


def _validate(loaded: LoadedYaml) -> AIPolicy:
    try:
        return AIPolicy.model_validate(loaded.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            where = ".".join(str(x) for x in loc) or "(top level)"
            msg = str(err.get("msg"))
            if err.get("type") not in ("missing", "model_type") and not isinstance(err.get("input"), dict | list):
                msg += f" (got {err.get('input')!r})"
            problems.append(Problem(loaded.file, loaded.line_of(loc), f"{where}: {msg}"))
        raise PolicyFileError(problems) from None


def parse_policy(text: str, file: str = FILE_NAME) -> Policy:
    """Validate policy text completely; raise PolicyFileError listing every problem with file:line."""
    loaded = load_yaml_text(text, file)
    if not isinstance(loaded.data, dict):
        raise PolicyFileError([Problem(file, 1, "the policy must be a mapping (key: value) at the top level")])
    loaded.lines.update(_key_lines(text))
    model = _validate(loaded)
    problems = _cross_check(loaded, model)
    if problems:
        raise PolicyFileError(problems)
    return Policy(model, text, file)


def policy_path() -> Path:
    from casemgr.config import get_settings

    return Path(get_settings().policies_dir) / FILE_NAME


class AIPolicyDocument(SingleFileType[Policy]):
    """policies/ai-policy.yaml as a versioned document (kind 'ai-policy'); its version is content_version(text)."""

    kind = DocumentKind.AI_POLICY
    row_name = FILE_NAME
    file_name = FILE_NAME

    def shipped_path(self) -> Path:
        return policy_path()

    def validate(self, doc: Document, *, label: str | None = None) -> Policy:
        return parse_policy(doc.text, label or FILE_NAME)


AI_POLICY = AIPolicyDocument()


def _off_policy() -> Policy:
    """Fail safe when there is no valid policy anywhere: every AI decision is off."""
    model = AIPolicy(
        name="built-in fail-safe (no valid ai-policy)", review_by=date(1970, 1, 1), kill_switch="off",
        review=Review(sample_rate=0.0, reason_codes=["other"]), decisions={},
    )
    return Policy(model, "# fail-safe: no valid policy\nkill_switch: off\n", "built-in")


def _build(doc: Document, label: str) -> Policy:
    policy = parse_policy(doc.text, label)
    for warning in policy.warnings():
        log.warning("ai-policy %s: %s", policy.version, warning)
    return policy


def new_live_policy() -> LiveDocument[Policy]:
    """The context's live AI policy (casemgr.runtime.Runtime.policy). Checked on every call (one indexed
    query): a publish is in force for the next decision, in every process."""
    return LiveDocument(AI_POLICY, _build, fallback=_off_policy)


def _live() -> LiveDocument[Policy]:
    return runtime.current().policy


def active_policy(session: Any | None = None) -> Policy:
    """The policy in force now (published DB version, else the file), validated and cached.

    If the source turned invalid, the last valid policy stays in force and the error is kept in
    `active_error()`; with no valid policy at all, AI is off (fail-safe).
    """
    return _live().get(session)


def active_error() -> str | None:
    """Why the current source of the policy was refused, if it was (the previous one is still in force)."""
    return _live().last_error
