"""Request models built from a case type's field definitions (issue 22: no hand-written model per type).

`form_model(ct)` is a pydantic model made with `create_model` from the YAML `fields:`; the public form
(/submit/<slug>) validates the posted text with it, so a type added in YAML gets a working form with no code.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from casemgr.casetypes.schema import CaseTypeDef, FieldDef
from casemgr.limits import FIELD_LABEL_CHARS

MAX_NUMBER = 1e12  # an amount on a public form above this is a typo, not a claim


class _FormBase(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


def _annotation(fd: FieldDef) -> Any:
    if fd.type == "number":
        return Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False)]
    if fd.type == "integer":
        return Annotated[int, Field(ge=0, le=int(MAX_NUMBER))]
    if fd.type == "boolean":
        return bool
    if fd.type == "date":
        return date
    if fd.type == "enum":
        return Literal[tuple(fd.choices or [""])]  # type: ignore[misc]
    limit = fd.max_length or (FIELD_LABEL_CHARS if fd.type == "string" else None)
    return Annotated[str, Field(max_length=limit)] if limit else str


def form_fields(ct: CaseTypeDef) -> list[FieldDef]:
    return [fd for fd in ct.fields if fd.form]


# Keyed by id(): a reloaded registry brings new CaseTypeDef objects (and so new models); the entry keeps
# its CaseTypeDef alive so an id is never reused for another type while cached.
_cache: dict[int, tuple[CaseTypeDef, type[BaseModel]]] = {}


def _model(ct: CaseTypeDef) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for fd in form_fields(ct):
        ann = _annotation(fd)
        fields[fd.name] = (ann, ...) if fd.required else (ann | None, None)
    return create_model(f"Form_{ct.name.replace('-', '_')}", __base__=_FormBase, **fields)  # type: ignore[call-overload,no-any-return]


def form_model(ct: CaseTypeDef) -> type[BaseModel]:
    hit = _cache.get(id(ct))
    if hit is None or hit[0] is not ct:
        if len(_cache) > 256:
            _cache.clear()
        hit = _cache[id(ct)] = (ct, _model(ct))
    return hit[1]


def _message(fd: FieldDef, error: dict[str, Any]) -> str:
    what = (fd.label or fd.name.replace("_", " ")).lower()
    if error.get("type") == "missing":
        return f"Please fill in the {what}."
    if fd.type in ("number", "integer"):
        return f"Please give the {fd.name.replace('_', ' ')} as a number, for example 120.50."
    if fd.type == "date":
        return f"Please give the {what} as a date (YYYY-MM-DD)."
    if fd.type == "enum":
        return f"Please choose one of the listed options for the {what}."
    if error.get("type") == "string_too_long":
        return f"The {what} is too long."
    return f"Please check the {what}."


def validate_form(ct: CaseTypeDef, form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(fields as stored, errors by field name). Empty inputs are absent; numbers may carry thousands commas."""
    raw: dict[str, Any] = {}
    for fd in form_fields(ct):
        value = (form.get(fd.name) or "").strip()
        if fd.type in ("number", "integer"):
            value = value.replace(",", "")
        if fd.type == "boolean":
            raw[fd.name] = value.lower() in ("on", "true", "yes", "1")
        elif value:
            raw[fd.name] = value
    by_name = {fd.name: fd for fd in ct.fields}
    try:
        model = form_model(ct).model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            if name in by_name and name not in errors:
                errors[name] = _message(by_name[name], dict(e))
        return {}, errors
    out: dict[str, Any] = {}
    for name, value in model.model_dump(exclude_none=True).items():
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out, {}
