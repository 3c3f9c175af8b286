"""Public intake forms (/submit/<slug> for every case type in case-types.yaml) and the JSON intake API (POST /api/intake).

Both take any case type the YAML defines: the form's fields and their checks come from the type's field
definitions (casemgr.casetypes.forms, a pydantic model made with create_model), so a new type needs no code.

The form needs no login. CSRF: the form carries a pre-session token that CSRFMiddleware checks against its
signed cookie (casemgr.web.csrf, the one mechanism for every form). Each client IP gets
settings.form_rate_per_minute submissions a minute, counted in the database so the limit holds across app
processes and hosts (casemgr.ratelimit). A storage failure shows "please try again" (503), never a
half-written case.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from starlette.datastructures import UploadFile

from casemgr.casetypes.forms import form_fields, validate_form
from casemgr.casetypes.registry import get_registry
from casemgr.casetypes.schema import NAME_RE, CaseTypeDef
from casemgr.config import get_settings
from casemgr.errors import TooLarge, ValidationFailed
from casemgr.intake.parse import ParsedAttachment, clean_header, sanitise_filename
from casemgr.intake.service import IntakeResult, Submission, ingest_submission_async
from casemgr.limits import PARTY_NAME_CHARS
from casemgr.ratelimit import service as ratelimit
from casemgr.users.service import Principal
from casemgr.web import csrf
from casemgr.web.clientaddr import client_address
from casemgr.web.deps import require
from casemgr.web.templating import templates

router = APIRouter()
_RETRY_LATER = "We could not save your submission just now. Nothing was saved; please try again in a minute."
MAX_FILES = 5
MAX_FILE_BYTES = 10 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def _type_of(kind: str) -> CaseTypeDef | None:
    return get_registry().by_slug(kind)


def _render(request: Request, kind: str, *, values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
            message: str | None = None, status: int = 200) -> HTMLResponse:
    ct = get_registry().by_slug(kind)
    assert ct is not None  # callers checked the slug
    response = templates.TemplateResponse(
        request, "submit/form.html",
        {"kind": kind, "title": ct.form_title or ct.label, "form_fields": form_fields(ct),
         "form_token": csrf.form_token(request), "values": values or {}, "errors": errors or {}, "message": message,
         "principal": None, "csrf_token": None},
        status_code=status,
    )
    csrf.set_form_cookie(response, request)
    return response


# ---------------------------------------------------------------- form


@router.get("/submit/{kind}", response_class=HTMLResponse, include_in_schema=False)
def submit_form(request: Request, kind: str) -> Response:
    if _type_of(kind) is None:
        return HTMLResponse("Not found", status_code=404)
    return _render(request, kind)


def _validate(kind: str, form: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    errors: dict[str, str] = {}
    settings = get_settings()
    name = form.get("name", "").strip()
    email = form.get("email", "").strip()
    subject = form.get("subject", "").strip()
    description = form.get("description", "").strip()
    if not name:
        errors["name"] = "Please tell us your name."
    elif len(name) > 300:
        errors["name"] = "Your name is too long (300 characters at most)."
    if not _EMAIL.match(email):
        errors["email"] = "Please give an email address like name@example.com, so we can reply."
    if not subject:
        errors["subject"] = "Please add a short subject."
    elif len(subject) > settings.max_subject_chars:
        errors["subject"] = f"The subject is too long ({settings.max_subject_chars} characters at most)."
    if len(description) < 10:
        errors["description"] = "Please describe the matter in a few words (at least 10 characters)."
    elif len(description) > settings.max_field_chars:
        errors["description"] = f"The description is too long ({settings.max_field_chars} characters at most)."
    phone = form.get("phone", "").strip()
    if phone and not re.fullmatch(r"[0-9+() .\-]{3,50}", phone):
        errors["phone"] = "Please use digits, spaces and + ( ) - only."
    organisation = form.get("organisation", "").strip()
    if len(organisation) > PARTY_NAME_CHARS:
        errors["organisation"] = "The organisation name is too long."
    ct = get_registry().by_slug(kind)
    assert ct is not None
    fields, field_errors = validate_form(ct, form)
    errors.update(field_errors)
    # The sender's organisation is the other party when the type has a counterparty field (contracts).
    if organisation and not fields.get("counterparty") and any(f.name == "counterparty" for f in ct.fields):
        fields["counterparty"] = organisation[:PARTY_NAME_CHARS]
    return errors, fields


async def _read_files(uploads: list[UploadFile]) -> tuple[list[ParsedAttachment], str | None]:
    files = [u for u in uploads if isinstance(u, UploadFile) and u.filename]
    if len(files) > MAX_FILES:
        return [], f"Please attach at most {MAX_FILES} files."
    out: list[ParsedAttachment] = []
    total = 0
    for i, upload in enumerate(files, start=1):
        data = await upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            return [], f"{clean_header(upload.filename or '', 100)} is larger than {MAX_FILE_BYTES // 1024 // 1024} MB."
        total += len(data)
        if total > get_settings().max_message_bytes:
            return [], "The attachments together are too large."
        ctype = clean_header(upload.content_type or "application/octet-stream", 255)
        out.append(ParsedAttachment(sanitise_filename(upload.filename, ctype, i), ctype, data))
    return out, None


@router.post("/submit/{kind}", response_class=HTMLResponse, include_in_schema=False)
async def submit_post(request: Request, kind: str) -> Response:
    ct = _type_of(kind)
    if ct is None:
        return HTMLResponse("Not found", status_code=404)
    settings = get_settings()
    limit = settings.max_message_bytes + 1024 * 1024
    if int(request.headers.get("content-length") or 0) > limit:
        return _render(request, kind, message="Your submission is too large. Please attach smaller files.",
                       status=413)
    form = await request.form(max_files=MAX_FILES + 1, max_fields=50)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    ip = client_address(request)  # the real client: X-Forwarded-For only from trusted proxies
    try:
        allowed = await run_in_threadpool(ratelimit.allow, f"form:{ip}", settings.form_rate_per_minute)
    except OperationalError:
        return _render(request, kind, values=values, status=503, message=_RETRY_LATER)
    if not allowed:
        from casemgr.security.enums import SecurityEventKind
        from casemgr.security.middleware import mark_logged
        from casemgr.security.service import record_async

        mark_logged(request.state)
        await record_async(SecurityEventKind.RATE_LIMITED, client=ip, path=f"POST /submit/{kind}",
                           detail="public form submissions per address")
        return _render(request, kind, values=values, status=429,
                       message="You have sent several submissions in a short time. Please wait a minute and retry.")
    errors, fields = _validate(kind, values)
    attachments, file_error = await _read_files(form.getlist("attachments"))  # type: ignore[arg-type]
    if file_error:
        errors["attachments"] = file_error
    if errors:
        return _render(request, kind, values=values, errors=errors, status=422,
                       message="Please correct the highlighted fields.")
    sub = Submission(channel="form", case_type=ct.name, subject=values["subject"].strip(),
                     body=values["description"].strip(), name=values.get("name"), email=values.get("email"),
                     phone=values.get("phone") or None, organisation=values.get("organisation") or None,
                     fields=fields, attachments=attachments, source=f"form:{ip}")
    try:
        result = await ingest_submission_async(sub, actor="system:form")
    except OperationalError:
        return _render(request, kind, values=values, status=503, message=_RETRY_LATER)
    except ValidationFailed as exc:
        return _render(request, kind, values=values, status=422, message=exc.message)
    response = templates.TemplateResponse(
        request, "submit/done.html",
        {"reference": result.reference, "email": sub.email, "kind": kind, "principal": None, "csrf_token": None,
         "acknowledgement": result.acknowledgement},
    )
    return response


# ---------------------------------------------------------------- API


class SenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    organisation: str | None = Field(default=None, max_length=300)


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str = Field(max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    content_base64: str = Field(max_length=15_000_000)


class IntakeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Any type in case-types.yaml (types are data); an unknown name is a 422 that lists the known ones.
    case_type: str | None = Field(default=None, pattern=NAME_RE, max_length=64,
                                  description="A case type name; default: the first type in case-types.yaml")
    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(default="", max_length=100_000)
    sender: SenderIn | None = None
    external_id: str | None = Field(default=None, max_length=200,
                                    description="Your id for this message; the same id twice is stored once")
    fields: dict[str, Any] = Field(default_factory=dict)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)


class IntakeOut(BaseModel):
    status: Literal["case", "appended", "duplicate", "quarantined"]
    case_id: int | None
    reference: str | None
    reason: str | None = None


def _decode_attachments(items: list[AttachmentIn]) -> list[ParsedAttachment]:
    out = []
    total = 0
    for i, item in enumerate(items, start=1):
        try:
            data = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(f"attachments[{i - 1}].content_base64 is not valid base64",
                                   field="attachments") from None
        total += len(data)
        if total > get_settings().max_message_bytes:
            raise TooLarge(f"attachments exceed the limit of {get_settings().max_message_bytes} bytes")
        ctype = clean_header(item.content_type, 255)
        out.append(ParsedAttachment(sanitise_filename(item.filename, ctype, i), ctype, data))
    return out


@router.post("/api/intake", response_model=IntakeOut, status_code=201, tags=["intake"],
             responses={200: {"description": "Duplicate of an earlier submission (same external_id)"}})
async def api_intake(body: IntakeIn, principal: Annotated[Principal, Depends(require("intake.submit"))]) -> Any:
    """Open a case from another system's message (or recognise a repeat of the same external_id)."""
    if body.sender and body.sender.email and not _EMAIL.match(body.sender.email.strip()):
        raise ValidationFailed("sender.email is not a valid email address", field="sender.email")
    # Async: a plain new case waits for its group commit on the event loop instead of holding a thread
    # (issue 10); attachments are decoded on the thread pool, not on the loop.
    attachments = await run_in_threadpool(_decode_attachments, body.attachments) if body.attachments else []
    sub = Submission(
        channel="api", case_type=body.case_type or next(iter(get_registry().case_types)), subject=body.subject, body=body.body,
        name=body.sender.name if body.sender else None, email=body.sender.email if body.sender else None,
        phone=body.sender.phone if body.sender else None,
        organisation=body.sender.organisation if body.sender else None, external_id=body.external_id,
        fields=body.fields, attachments=attachments, source=f"api:{principal.actor}",
    )
    result: IntakeResult = await ingest_submission_async(sub, actor=principal.actor)
    out = IntakeOut(status=result.status, case_id=result.case_id, reference=result.reference,  # type: ignore[arg-type]
                    reason=result.reason)
    return JSONResponse(out.model_dump(), status_code=200 if result.status == "duplicate" else 201)
