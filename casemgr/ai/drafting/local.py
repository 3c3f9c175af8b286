"""The offline provider's reply draft: the best-fitting macro of the case type, completed by intent and facts.

How a draft is put together:
1. the macro: one of the case type's macros that fits the current stage, preferred by the intent's list
   (phrases.PHRASES), else one written for exactly this stage, else one that only acknowledges or asks for
   details (never one that announces a refund or an escalation the draft cannot know about); rendered in the
   macros' sandboxed Jinja2 with the case facts. Its greeting and sign-off frame the draft, its body stays;
2. what we understood (the intent with the amounts and dates found in the message), what happens next (the
   intent's customer-facing steps, an escalation when a hard deadline is near) and what we need from the
   customer, inserted after the macro's opening (who we are, the reference);
3. the SOPs of the current stage steer it: "confirm the date we received it" adds that date, and "never
   promise an outcome" drops any sentence that promises a refund, reversal or compensation;
4. the case subject never appears: the customer wrote it, and "Thank you for contacting us about <subject>"
   reads as a template. Macros are rendered with a marker for the subject and the phrase around it is cut.

No network, no database: everything comes in the DraftContext (casemgr.ai.schemas).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from casemgr.ai.drafting.phrases import IntentPhrases, account_words, phrases_for
from casemgr.ai.schemas import Draft, DraftContext, MacroText

SUBJECT_MARK = "\u00a7SUBJECT\u00a7"
_SUBJECT_PHRASE = re.compile(r"\s*(?:about|regarding|concerning)?\s*[(\"\u201c']?" + re.escape(SUBJECT_MARK)
                             + r"[)\"\u201d']?")
_GREETING = re.compile(r"^(?:dear|hello|hi|good (?:morning|afternoon))\b[^\n]*,\s*$", re.IGNORECASE)
_SIGNOFF = re.compile(r"^(?:kind regards|regards|best regards|best wishes|yours sincerely|yours faithfully|"
                      r"many thanks|thank you),?\s*(?:\n|$)", re.IGNORECASE)
# A sentence that promises an outcome: dropped where the stage's SOP says "never promise".
_PROMISE = re.compile(r"\bwe\s+(?:will|have|shall|'ll)\s+(?:now\s+)?(?:refund|refunded|reverse|reversed|reimburse|"
                      r"reimbursed|compensate|compensated|waive|waived)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_ESCALATION = re.compile(r"^Escalate:\s*(.+?)\s+date in (\d+) days?", re.IGNORECASE)
# Macros that tell the customer something already happened (escalated, delayed, final): used only when the
# intent asks for them, never as a generic opener.
_SITUATIONAL = ("escalate", "delay", "final", "regulatory", "redlines", "signature", "renewal")
_OPENERS = ("acknowledge", "request-information", "missing-details")
NO_INTENT_CONFIDENCE = 0.6  # a macro fits the stage but nothing says what the customer wants
NO_MACRO_FACTOR = 0.8


def _score(m: MacroText, stage: str, ph: IntentPhrases | None) -> int:
    """10..: the intent's own macros; 2: a macro written for exactly this stage; 1: one that only acknowledges
    or asks for details; 0: not a source (it would tell the customer something the draft cannot know)."""
    if ph is not None and m.name in ph.macros:
        return 10 - ph.macros.index(m.name)
    if any(word in m.name for word in _SITUATIONAL):
        return 0
    if m.stages == [stage]:
        return 2
    return 1 if any(word in m.name for word in _OPENERS) else 0


def choose_macro(ctx: DraftContext, ph: IntentPhrases | None) -> MacroText | None:
    """The macro that answers this case best at its stage, or None when none fits."""
    fits = [m for m in ctx.macros if m.reply.strip() and (not m.stages or ctx.stage in m.stages)]
    scored = sorted(((_score(m, ctx.stage, ph), m) for m in fits), key=lambda sm: (-sm[0], len(sm[1].stages),
                                                                                   sm[1].name))
    return scored[0][1] if scored and scored[0][0] > 0 else None


@lru_cache(maxsize=128)
def _compiled(source: str) -> Any:
    """A macro's template compiled once (the worker drafts for every enriched case)."""
    from casemgr.macros import render

    return render.env().from_string(source)


def _render(m: MacroText, ctx: DraftContext) -> str | None:
    name = ctx.customer_name or "customer"
    values: dict[str, Any] = {
        "case": {"reference": ctx.reference, "subject": SUBJECT_MARK, "stage": ctx.stage, "priority": None,
                 "queue": None, "category": ctx.category, "amount": ctx.amount, "case_type": ctx.case_type,
                 "created": ctx.received},
        "fields": dict(ctx.fields), "customer_name": name,
        "customer_first_name": name.split()[0] if ctx.customer_name else "customer", "customer_email": None,
        "agent_name": ctx.agent_name or "Customer care", "due": ctx.due, "today": ctx.today,
    }
    try:
        return str(_compiled(m.reply).render(**values))
    except Exception:  # noqa: BLE001 - a macro that does not render for these facts is just not a source
        return None


def _paragraphs(text: str) -> list[str]:
    """Paragraphs with their hard line breaks joined (list items keep theirs), subject phrases cut."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if _SIGNOFF.match(lines[0]):  # "Kind regards,\nName" keeps its line break
            out.append("\n".join(lines))
            continue
        joined: list[str] = []
        for ln in lines:
            if joined and not ln.startswith("- ") and not joined[-1].endswith(":") and not joined[-1].startswith("- "):
                joined[-1] += " " + ln
            else:
                joined.append(ln)
        para = "\n".join(joined)
        para = _SUBJECT_PHRASE.sub("", para).replace(SUBJECT_MARK, "")
        out.append(re.sub(r"[ \t]+([.,;:])", r"\1", para))
    return out


def _opening(body: list[str], reference: str) -> tuple[list[str], list[str]]:
    """Split the macro body after its opening: the first paragraph, or, when the macro is one paragraph, its
    sentences up to the one naming the case reference (else its first sentence). A lead-in ending in ":" keeps
    its list."""
    if len(body) != 1:
        cut = 1
        while cut < len(body) and body[cut - 1].rstrip().endswith(":"):  # a list belongs to its lead-in
            cut += 1
        return body[:cut], body[cut:]
    sentences = _SENTENCE.split(body[0])
    cut = next((i + 1 for i, s in enumerate(sentences) if reference and reference in s), 1)
    head, rest = " ".join(sentences[:cut]), " ".join(sentences[cut:])
    return [head], [rest] if rest.strip() else []


def _fill(template: str, ctx: DraftContext) -> str:
    amount = ctx.amounts[0] if ctx.amounts else (f"{ctx.amount:,.2f}" if ctx.amount else "")
    date = ctx.dates[0] if ctx.dates else ""
    return template.format(amount=f" of {amount}" if amount else "", date=f" on {date}" if date else "",
                           account=account_words(ctx.category))


def _escalation(ctx: DraftContext) -> str | None:
    for step in ctx.next_steps:
        m = _ESCALATION.match(str(step.get("text") or "")) if step.get("escalate") else None
        if m:
            days = int(m.group(2))
            return (f"Because of the {m.group(1)} you mentioned, due in {days} day{'s' if days != 1 else ''}, "
                    "we are treating your complaint as urgent.")
    return None


def _contract_paragraph(ctx: DraftContext) -> str | None:
    words = {"parties": "parties", "expiration_date": "expiry", "renewal_term": "renewal term",
             "notice_period_to_terminate_renewal": "notice period", "governing_law": "governing law"}
    items = [f"{label} {ctx.contract[key]}" for key, label in words.items() if ctx.contract.get(key)]
    return f"From the documents we have noted: {'; '.join(items)}." if items else None


def _no_promises(paragraphs: list[str]) -> list[str]:
    out = []
    for para in paragraphs:
        kept = " ".join(s for s in _SENTENCE.split(para) if not _PROMISE.search(s))
        if kept.strip():
            out.append(kept)
    return out


def draft_local(ctx: DraftContext) -> Draft:
    ph = phrases_for(ctx.intent)
    macro = choose_macro(ctx, ph)
    sop_text = "\n".join(ctx.sops.values()).lower()
    evidence: list[str] = []
    if ctx.intent:
        evidence.append(f"intent {ctx.intent}" + (f" ({ctx.intent_confidence:.2f})"
                                                   if ctx.intent_confidence is not None else ""))
    evidence += [f"amount {a}" for a in ctx.amounts[:2]] + [f"date {d}" for d in ctx.dates[:2]]

    greeting = f"Dear {ctx.customer_name or 'customer'},"
    signoff = f"Kind regards,\n{ctx.agent_name or 'Customer care'}"
    body: list[str] = []
    rendered = _render(macro, ctx) if macro else None
    if rendered is not None and macro is not None:
        paras = _paragraphs(rendered)
        if paras and _GREETING.match(paras[0]):
            greeting = paras.pop(0)
        if paras and _SIGNOFF.match(paras[-1]):
            signoff = paras.pop()
        body = paras
        evidence.append(f"macro {macro.name}")

    ours: list[str] = []
    if ph is not None:
        understood = _fill(ph.understood, ctx)
        if "date we received" in sop_text and ctx.received:
            understood += f" We received your message on {ctx.received}."
        steps = list(ph.next)
        urgent = _escalation(ctx)
        if urgent:
            steps.insert(0, urgent)
            evidence.append(urgent)
        ours = [understood, " ".join(steps)]
    elif ctx.contract:
        para = _contract_paragraph(ctx)
        if para:
            ours.append(para)
            evidence.append("extracted contract terms")
    # After the macro's opening (who we are, the reference), before its closing lines.
    head, tail = _opening(body, ctx.reference)
    if ph is not None and ph.need:
        # What would help, said where the macro already asks for a reply, else as its own paragraph.
        asks = next((i for i in range(len(tail) - 1, -1, -1) if "reply" in tail[i].lower()), None)
        if asks is not None:
            tail = [*tail[:asks], f"{tail[asks]} In particular, {ph.need} would help us.", *tail[asks + 1:]]
        else:
            ours.append(f"It would help us to have {ph.need}; simply reply to this email.")
    paragraphs = head + ours + tail
    if "never promise" in sop_text:
        paragraphs = _no_promises(paragraphs)
    if not paragraphs:
        paragraphs = ["Thank you for your message. We are looking into it and will be in touch shortly."]
    text = "\n\n".join([greeting, *paragraphs, signoff]) + "\n"

    sources = ([macro.name] if macro and rendered is not None else []) + sorted(ctx.sops)
    evidence += [f"SOP {path}" for path in sorted(ctx.sops)]
    if ph is not None:
        confidence = ctx.intent_confidence if ctx.intent_confidence is not None else 0.5
        if ctx.intent == "other":
            confidence = min(confidence, 0.4)
    else:
        confidence = NO_INTENT_CONFIDENCE
    if macro is None or rendered is None:
        confidence *= NO_MACRO_FACTOR
    return Draft(text=text, confidence=round(max(0.0, min(1.0, confidence)), 4), evidence=evidence[:12],
                 sources=sources[:8])
