"""Wrap plain complaint texts as the emails people really send, to measure robustness.

`ai eval --wrap email` puts each text between a greeting and a signature, with a legal disclaimer
and a quoted earlier reply; `--wrap advert` also pastes a bank's advert for another product into
the message. Deterministic for a seed, so two runs compare.
"""

from __future__ import annotations

import random

_GREETINGS = ["Hello,", "Hi team,", "Dear Sir or Madam,", "To whom it may concern:", "Good morning,", "Hi there,"]
_SIGNATURES = [
    "Thanks,\nJordan Miller\n555-0134",
    "Best regards,\nA. Patel\nSent from my iPhone",
    "Sincerely,\nMaria Gonzales\n12 Oak Street, Springfield",
    "Regards,\nChris\n--\nChris Lee | Operations Manager | Acme Widgets Ltd",
    "Thank you,\nSam",
]
_DISCLAIMERS = [
    "This email and any attachments are confidential and intended solely for the addressee. If you are not the "
    "intended recipient, please delete it and notify the sender.",
    "This message was scanned for viruses. Please consider the environment before printing this email.",
]
_QUOTED = [
    "On Mon, Mar 4, 2024 at 9:12 AM Customer Care <care@example-bank.com> wrote:\n> Thank you for contacting us.\n"
    "> Your reference number is 88213. We will review your account and get back to you.",
    "-----Original Message-----\nFrom: Support <support@example.com>\nSent: Tuesday\nSubject: Your request\n\n"
    "We have received your message regarding your loan and credit card statement.",
]
ADVERTS = [
    "NEW! The Platinum Rewards credit card: 0% intro APR on balance transfers for 18 months. No annual fee. "
    "Apply now, terms apply. Earn 50,000 bonus points.",
    "Refinance your mortgage today with rates as low as 5.9% APR. Pre-approved offers for homeowners. "
    "Call us today, limited time only. See website for details.",
    "Open a high-yield savings account and earn up to 4.5% APY. Sign up today, special offer ends Friday. "
    "Unsubscribe at any time.",
    "Check your credit score for free! Sign up now and get your free credit report monitoring. Limited time offer, "
    "terms apply.",
]


def wrap_email(text: str, rnd: random.Random, advert: bool = False) -> str:
    parts = [rnd.choice(_GREETINGS), text]
    if advert:
        # Pasted where people paste it: under their own words, above the signature.
        parts.append(rnd.choice(ADVERTS))
    parts.append(rnd.choice(_SIGNATURES))
    if rnd.random() < 0.6:
        parts.append(rnd.choice(_DISCLAIMERS))
    if rnd.random() < 0.5:
        parts.append(rnd.choice(_QUOTED))
    return "\n\n".join(parts)


def wrap_all(texts: list[str], mode: str, seed: int = 0) -> list[str]:
    if mode == "none":
        return list(texts)
    if mode not in ("email", "advert"):
        raise ValueError(f"unknown wrap {mode!r}: choose none, email or advert")
    rnd = random.Random(seed)
    return [wrap_email(t, rnd, advert=(mode == "advert")) for t in texts]
