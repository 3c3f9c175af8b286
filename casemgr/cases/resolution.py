"""Resolution codes (issue 22, root causes): a case type that lists `resolution_codes` in case-types.yaml cannot
enter a final stage until an agent has confirmed one of them. Every path that closes a case (the API, the case
page, bulk close, macros, an accepted AI suggestion) goes through cases.service.move_stage, which asks here."""

from __future__ import annotations

from typing import Any

from casemgr.casetypes.schema import CaseTypeDef
from casemgr.errors import ValidationFailed


def choices(ct: CaseTypeDef) -> list[str]:
    return [c.name for c in ct.resolution_codes]


def check_code(ct: CaseTypeDef, code: str | None, to_stage: str) -> str | None:
    """The code to store for a move to `to_stage` (None: none given); 422 for a code the move cannot take."""
    if code is None or code == "":
        return None
    if not ct.resolution_codes:
        raise ValidationFailed(f"case type {ct.name!r} has no resolution codes", field="resolution_code")
    target = ct.stage(to_stage)
    if target is None or not target.final:
        raise ValidationFailed(f"a resolution code is chosen when a {ct.name} closes; {to_stage!r} is not a closing "
                               "stage", field="resolution_code")
    if code not in choices(ct):
        raise ValidationFailed(f"unknown resolution code {code!r} for {ct.name}; choices: {', '.join(choices(ct))}",
                               field="resolution_code")
    return code


def require(ct: CaseTypeDef, case: Any, to_stage: str, code: str | None = None) -> None:
    """422 when `to_stage` closes a case of a type with resolution codes and neither `code` nor the case has one."""
    target = ct.stage(to_stage)
    if target is None or not target.final or not ct.resolution_codes:
        return
    if not (code or getattr(case, "resolution_code", None)):
        raise ValidationFailed(f"closing a {ct.name} needs a resolution code (resolution_code), one of: "
                               f"{', '.join(choices(ct))}", field="resolution_code")
