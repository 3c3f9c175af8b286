"""The RE2 pre-check in casemgr.ai.scope never passes over a message the exact `re` cue scan would flag."""

from __future__ import annotations

import itertools

import pytest

from casemgr.ai import scope
from casemgr.bench.intake_http import BODIES

# One text per cue family, in the spellings Python's `re` accepts and ASCII-only engines may not: Unicode digits
# and spaces (an e-mail's no-break space), other cases, a long-s that folds to "s".
CUE_TEXTS = [
    "Limited-time offer: 50% off, click here to claim", "Only today ٥٠ % off!", "Save 20\u00a0% off now",
    "Save 20\u2009% off", "UNSUBSCRIBE here", "ACT NOW and buy now", "free ſhipping for you", "You've been selected",
    "Congratulations! you won", "earn $500 per day working from home", "work from home", "crypto investment",
    "Please verify your account within 24 hours or it will be closed", "Your account has been suspended",
    "confirm your bank details", "update your billing information", "log in now to keep access",
    "wire the funds urgently", "buy gift cards", "send it to my bitcoin wallet", "next of kin of the late",
    "reset your password now", "This is an advertisement. Opt-out below.",
]


@pytest.mark.parametrize(("any_", "exact"), [(scope._SPAM_ANY, scope._SPAM_RE), (scope._PHISHING_ANY, scope._PHISHING_RE)])
def test_the_prefilter_finds_every_message_the_exact_scan_flags(any_: object, exact: object) -> None:
    texts = [*CUE_TEXTS, *BODIES, *(f"{a} {b}" for a, b in itertools.combinations(CUE_TEXTS[:8], 2))]
    flagged = 0
    for text in texts:
        expected = sorted({m.group(0).lower() for m in exact.finditer(text)})  # type: ignore[attr-defined]
        assert scope._cue_hits(any_, exact, text) == expected, text  # type: ignore[arg-type]
        flagged += bool(expected)
    assert flagged >= 10  # the texts do exercise the cues


def test_a_message_without_a_cue_skips_the_exact_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        def finditer(self, text: str) -> None:
            raise AssertionError("the exact scan ran on a message the prefilter cleared")

    assert scope._cue_hits(scope._SPAM_ANY, Exploding(), BODIES[0]) == []  # type: ignore[arg-type]
    assert scope.assess("I was charged twice on my credit card and the bank refuses a refund.").spam is False
