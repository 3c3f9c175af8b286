"""The weekly root-cause digest: last week's confirmed causes against the week before, the top movers and the
recurring causes per product, mailed to CASEMGR_ROOT_CAUSE_DIGEST_TO through the outbox (the `mail.send` job: the
relay, or the local outbox in demo mode) with the product owner's CSV attached. Worker job `rootcause.digest`."""

from __future__ import annotations

import email.policy
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.errors import ValidationFailed
from casemgr.intake.models import Message
from casemgr.intake.parse import clean_header
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler
from casemgr.rootcause.csvexport import csv_text
from casemgr.rootcause.report import report

DAYS = 7
ACTOR = "system:rootcause"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f} %"


def body_text(r: dict[str, Any]) -> str:
    lines = [f"Complaint root causes, {r['from']} to {r['to']} (the {r['period_days']} days before: "
             f"{r['previous_from']} to {r['previous_to']}).", "",
             f"Closed with a confirmed cause: {r['total']} (before: {r['previous_total']}).", "", "Causes:"]
    lines += [f"  {c['label']}: {c['cases']} ({_pct(c['share'])}), before {c['previous']}, change {c['change']:+d}"
              for c in r["causes"]] or ["  none in this period"]
    lines += ["", "Top movers (cause and product):"]
    lines += [f"  {m['label']} / {m['product']}: {m['previous']} -> {m['cases']} ({m['change']:+d})"
              for m in r["top_movers"]] or ["  none"]
    lines += ["", "Recurring causes per product:"]
    lines += [f"  {p['product']}: {p['label']} x {p['cases']}" for p in r["by_product"]] or ["  none"]
    lines += ["", "The attached CSV has every cause by product, issue and queue. The dashboard shows the same figures "
              "for other periods."]
    return "\n".join(lines) + "\n"


def build(r: dict[str, Any], csv_body: str, to: str) -> tuple[EmailMessage, str]:
    settings = get_settings()
    domain = settings.mail_from.rpartition("@")[2] or "casemgr.local"
    message_id = f"<casemgr.digest.{uuid.uuid4().hex}@{domain}>"
    em = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    em["From"] = formataddr(("Case management", settings.mail_from))
    em["To"] = to
    em["Subject"] = clean_header(f"Complaint root causes {r['from']} to {r['to']}: {r['total']} closed", 400)
    em["Date"] = format_datetime(now())
    em["Message-ID"] = message_id
    em["Auto-Submitted"] = "auto-generated"
    em.set_content(body_text(r), cte="quoted-printable")
    em.add_attachment(csv_body.encode("utf-8"), maintype="text", subtype="csv",
                      filename=f"root-causes-{r['from']}-{r['to']}.csv")
    return em, message_id


def queue_digest(session: Session, to: str, *, at: datetime | None = None, days: int = DAYS) -> Message:
    """Store the digest as an outbound message and its send job, in the caller's transaction (audited)."""
    to = clean_header(to, 320)
    if "@" not in to or " " in to:
        raise ValidationFailed(f"cannot send the root-cause digest to {to!r}: not an email address",
                               field="root_cause_digest_to")
    r = report(session, days=days, at=at)
    em, message_id = build(r, csv_text(session, days=days, at=at), to)
    msg = Message(case_id=None, direction="outbound", channel="email", message_id=message_id,
                  sender=get_settings().mail_from, recipients=[to], subject=str(em["Subject"]),
                  body_text=body_text(r), raw=em.as_bytes(), status="queued",
                  meta={"kind": "rootcause_digest", "actor": ACTOR, "from": r["from"], "to": r["to"]})
    session.add(msg)
    session.flush()
    enqueue(session, "mail.send", {"message_pk": msg.id}, idempotency_key=f"mail.send:{msg.id}")
    audit.record(session, actor=ACTOR, action="message.digest_queued", entity=f"message:{msg.id}",
                 after={"to": to, "subject": msg.subject, "from": r["from"], "until": r["to"], "total": r["total"]})
    return msg


@job_handler("rootcause.digest")
def digest_job(session: Session, job: Job) -> None:
    """Weekly (casemgr.worker.SCHEDULES); one job per week window, so a retry after a crash sends nothing twice:
    the message and its send job commit with the job itself."""
    to = get_settings().root_cause_digest_to
    if not to:
        return  # no owner address configured: no digest
    queue_digest(session, to)
