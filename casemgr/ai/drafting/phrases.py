"""Customer-facing sentences per complaint intent (casemgr.ai.targets.INTENTS).

The agent-side next steps (casemgr.ai.nextsteps) say what the agent does ("open a chargeback"); a reply says
what the customer needs to hear: what we understood, what happens now, and what we need from them. None of
these promise an outcome (a refund, a reversal): the SOPs forbid that before the investigation, and the
agent adds it when it is true. `{amount}` and `{date}` are filled with " of $35.00" / " on March 3, 2024" or "",
`{account}` with words for the category ("credit card account").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntentPhrases:
    understood: str
    next: tuple[str, ...]
    need: str | None = None  # what the customer can send us, when documents help
    # Macros (by name) that answer this intent, best first, where their stage fits. Never one that states a fact
    # (a refund made, a duplicate found): the model cannot know that, the agent applies such a macro.
    macros: tuple[str, ...] = ()


PHRASES: dict[str, IntentPhrases] = {
    "dispute_charge": IntentPhrases(
        "I understand that you are disputing a charge{amount}{date} on your {account}.",
        ("We will request the transaction records for this charge and review them in detail.",
         "If the charge was not authorised or not as agreed, we will raise a dispute with the card network and "
         "keep you informed of each step."),
        "your statement showing the charge and any receipt or messages from the merchant",
        ("complaint-request-information",),
    ),
    "fraud_identity_theft": IntentPhrases(
        "I understand that transactions or accounts{amount}{date} were opened or used in your name without "
        "your permission.",
        ("Our fraud team will review the account for any further unauthorised activity and can block the card "
         "or account to stop it.",
         "We will also check whether any of this information was reported to the credit bureaus."),
        "a list of the transactions or accounts you do not recognise and, if you have one, your identity-theft "
        "report (police or FTC)",
        (),
    ),
    "fix_credit_report": IntentPhrases(
        "I understand that your credit report shows information about this account that you believe is wrong.",
        ("We will compare our records with the entries you dispute.",
         "Where our reporting is wrong, we will send a correction to the credit bureaus and confirm it to you "
         "in writing."),
        "a copy of the credit report with the entries you dispute marked",
        ("complaint-request-information",),
    ),
    "debt_validation": IntentPhrases(
        "I understand that you do not believe you owe this debt{amount}, or not in the amount claimed, and that "
        "you would like proof of it.",
        ("We will send you the validation details of the debt: the original creditor, the amount and how it "
         "is made up.",
         "While the debt is being validated, we will not pursue collection of it."),
        "any letters or statements you received about this debt",
        ("complaint-request-information",),
    ),
    "stop_collector_conduct": IntentPhrases(
        "I understand that you want the collection calls and contacts you described to stop.",
        ("We have recorded how and when you want to be contacted, and we will review the contacts you "
         "described.",),
        "the dates and times of the calls or letters, if you have them",
        (),
    ),
    "refund_fee_reversal": IntentPhrases(
        "I understand that you are asking us to refund a fee{amount} charged{date} to your {account}.",
        ("We will review the fee against your account terms and our fee schedule, and tell you what we "
         "find.",),
        "the statement showing the fee",
        (),
    ),
    "hardship_modification": IntentPhrases(
        "I understand that you are in financial difficulty and would like to discuss a change to your "
        "payments.",
        ("We will send you the application for payment help and the list of documents it needs.",
         "If a payment, a sale or another action is due soon, tell us the date so we can consider holding it "
         "while we review your application."),
        None,
        (),
    ),
    "payment_problem": IntentPhrases(
        "I understand that a payment{amount}{date} was not applied to your {account} as it should have been.",
        ("We will trace the payment and check where it was applied.",
         "If it was applied wrongly, we will correct it together with any late fees or interest it caused."),
        "the payment confirmation (date, amount, method or confirmation number)",
        ("complaint-request-information",),
    ),
    "account_access": IntentPhrases(
        "I understand that you cannot use your {account} or reach your funds{amount}.",
        ("We will check why access to the account is restricted and what is needed to release it.",),
        None,
        (),
    ),
    "information_request": IntentPhrases(
        "I understand that you would like information about your account.",
        ("We will answer your question in writing, together with any documents you asked for.",),
        None,
        (),
    ),
    "other": IntentPhrases(
        "I have read your message, and I want to be sure we do exactly what you need.",
        ("Could you tell us, in a sentence or two, what outcome you would like from us?",),
        None,
        (),
    ),
}


def phrases_for(intent: str | None) -> IntentPhrases | None:
    return PHRASES.get(intent or "")


ACCOUNT_WORDS = {"credit_card": "credit card account", "retail_banking": "bank account",
                 "mortgages_and_loans": "loan account", "debt_collection": "account", "credit_reporting": "account"}


def account_words(category: str | None) -> str:
    return ACCOUNT_WORDS.get(category or "", "account")
