"""The policy file: the shipped one is valid; each of many mistakes is refused with file:line; an invalid
policy never replaces the active one."""

from __future__ import annotations

import os
from datetime import date

import pytest

from casemgr.governance import lifecycle
from casemgr.governance.policy import active_error, active_policy, parse_policy
from casemgr.policyfile import PolicyFileError

from .util import POLICY_FILE, policy

GOOD = POLICY_FILE.read_text(encoding="utf-8")


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _sub(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


MISTAKES = [
    # (name, broken text, text on the offending line, words expected in the message)
    ("yaml syntax", _sub("kill_switch: normal", "kill_switch: [normal"), None, "YAML syntax"),
    ("unknown top-level key", _sub("kill_switch: normal", "kill_switch: normal\nkillswitch: off"),
     "killswitch: off", "Extra inputs"),
    ("bad mode", _sub("    mode: never\n    owner: agent", "    mode: sometimes\n    owner: agent"),
     "mode: sometimes", "auto"),
    ("threshold above 1", _sub("threshold: 0.8", "threshold: 1.8"), "threshold: 1.8", "less than or equal to 1"),
    ("unknown owner role", _sub("    owner: finance\n  approve_contract", "    owner: accounts\n  approve_contract"),
     "owner: accounts", "unknown role 'accounts'"),
    ("unknown decision kind", _sub("  summarize:", "  make_coffee:\n    mode: never\n    owner: agent\n  summarize:"),
     "make_coffee:", "unknown decision kind"),
    ("missing required kind", _sub("  close_case:\n    mode: never\n    owner: agent\n", ""), "decisions:",
     "missing decision kind(s) close_case"),
    ("bad kill switch", _sub("kill_switch: normal", "kill_switch: maybe"), "kill_switch: maybe", "normal"),
    ("sample rate > 1", _sub("sample_rate: 0.1", "sample_rate: 10"), "sample_rate: 10", "less than or equal to 1"),
    ("review_by not a date", _sub("review_by: 2027-05-31", "review_by: next spring"), "review_by: next spring",
     "date"),
    ("negative refund limit", _sub("max_refund_amount: 100", "max_refund_amount: -1"), "max_refund_amount: -1",
     "greater than or equal to 0"),
    ("unknown PII kind", _sub("redact_pii: [email, phone, iban, card]", "redact_pii: [email, shoe_size]"),
     "redact_pii:", "shoe_size"),
    ("auto without threshold", _sub("    threshold: 0.8\n", ""), "set_priority:", "needs a threshold"),
    ("external without redaction", _sub("external_allowed: false", "external_allowed: true").replace(
        "redact_pii: [email, phone, iban, card]", "redact_pii: []"), "providers:", "redact_pii is empty"),
    ("unknown category", _sub("credit_reporting: 0.7", "crypto: 0.7"), "crypto: 0.7", "unknown category 'crypto'"),
    ("duplicate key", _sub("kill_switch: normal", "kill_switch: normal\nkill_switch: off"), "kill_switch: off",
     "duplicate key"),
    ("never with threshold", _sub("  close_case:\n    mode: never\n",
                                  "  close_case:\n    mode: never\n    threshold: 0.9\n"), "threshold: 0.9",
     "contradictory"),
]


def test_shipped_policy_is_valid() -> None:
    p = parse_policy(GOOD, "ai-policy.yaml")
    assert p.kill_switch == "normal"
    assert p.decision("close_case").mode == "never"  # type: ignore[union-attr]
    assert p.decision("approve_refund").mode == "suggest"  # type: ignore[union-attr]
    assert len(p.version) == 16


@pytest.mark.parametrize(("name", "text", "needle", "words"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_is_rejected_with_file_and_line(name: str, text: str, needle: str | None, words: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        parse_policy(text, "ai-policy.yaml")
    problems = err.value.problems
    assert any(words in p.message for p in problems), [str(p) for p in problems]
    assert all(str(p).startswith("ai-policy.yaml:") for p in problems)
    if needle is not None:
        line = _line_of(text, needle)
        assert any(p.line == line and words in p.message for p in problems), ([str(p) for p in problems], line)
    assert not lifecycle.check(text)["ok"]


def test_invalid_publish_keeps_active_and_invalid_file_keeps_last_good(tmp_path, monkeypatch) -> None:
    from casemgr.db import write_session
    from casemgr.errors import ValidationFailed
    from casemgr.runtime import rebuild

    # File-based: a valid file is active; breaking the file keeps the last valid one in force.
    pol_dir = tmp_path / "policies"
    import shutil

    shutil.copytree(POLICY_FILE.parent, pol_dir)
    monkeypatch.setenv("CASEMGR_POLICIES_DIR", str(pol_dir))
    rebuild()
    good = active_policy()
    assert good.source.endswith("ai-policy.yaml")
    (pol_dir / "ai-policy.yaml").write_text(MISTAKES[4][1], encoding="utf-8")
    os.utime(pol_dir / "ai-policy.yaml", ns=(1, 1))
    still = active_policy()
    assert still.version == good.version
    assert "unknown role 'accounts'" in (active_error() or "")

    # Published: an invalid candidate is refused and the published version stays active.
    with write_session() as s:
        first = lifecycle.publish(s, GOOD, actor="user:gov", roles={"governance"}, reason="baseline")
    for _, bad, _, _ in MISTAKES:
        with pytest.raises(ValidationFailed), write_session() as s:
            lifecycle.publish(s, bad, actor="user:gov", roles={"governance"}, reason="oops")
        with write_session() as s:
            assert active_policy(s).version == first["version"]


def test_review_by_in_the_past_warns() -> None:
    p = policy(review_by="2020-01-01")
    assert p.review_overdue(date(2026, 11, 25))
    assert any("review_by" in w for w in p.warnings(date(2026, 11, 25)))
    assert not policy().warnings(date(2026, 11, 25))
