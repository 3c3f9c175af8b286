"""`casemgr rules check`: every mistake is reported with file:line and rule name, and refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casemgr.cli import app
from casemgr.policyfile import PolicyFileError
from casemgr.rules.schema import RuleSource, parse_source
from casemgr.rules.service import RulesService

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
rules:
  - name: big
    salience: 10
    when:
      amount: {gt: 10000}
    then:
      derive: [high_value]
  - name: big-contract
    when:
      all:
        - type: contract
        - derived: high_value
    then:
      queue: contracts-legal-review
      approval: {name: Legal sign-off, role: legal, sop: policies/sop/rules/legal-review.md}
"""

# (id, file text, expected line, expected rule name or None, message fragment)
MISTAKES = [
    ("unknown-fact", GOOD.replace("amount: {gt: 10000}", "ammount: {gt: 10000}"), 5, "big", "unknown fact 'ammount'"),
    ("unknown-action", GOOD.replace("queue: contracts-legal-review", "route_to: contracts-legal-review"), 14,
     "big-contract", "unknown action 'route_to'"),
    ("bad-operator", GOOD.replace("{gt: 10000}", "{greater: 10000}"), 5, "big", "unknown operator 'greater'"),
    ("operator-wrong-kind", GOOD.replace("{gt: 10000}", "{matches: '1.*'}"), 5, "big",
     "operator not valid for a num fact"),
    ("bad-regex", GOOD.replace("- type: contract", "- stage: {matches: 'rev[iew'}"), 11, "big-contract",
     "bad regex"),
    ("unsupported-regex", GOOD.replace("- type: contract", "- stage: {matches: '^review'}"), 11, "big-contract",
     "not supported"),
    ("unknown-queue", GOOD.replace("queue: contracts-legal-review", "queue: legal-queue"), 14, "big-contract",
     "unknown queue 'legal-queue'"),
    ("unknown-role", GOOD.replace("role: legal,", "role: lawyers,"), 15, "big-contract", "unknown role 'lawyers'"),
    ("derived-never-used", GOOD.replace("- derived: high_value", "- amount: {gt: 5}"), 2, "big",
     "'high_value' is derived but no rule uses it"),
    ("used-never-derived", GOOD.replace("derive: [high_value]", "priority: high"), 8, "big-contract",
     "'high_value' is used but no rule derives it"),
    ("derived-name-is-base-fact", GOOD.replace("derive: [high_value]", "derive: [amount]"), 7, "big",
     "cannot derive 'amount'"),
    ("duplicate-rule", GOOD.replace("name: big-contract", "name: big"), 8, "big", "duplicate rule name"),
    ("yaml-syntax", GOOD.replace("amount: {gt: 10000}", "amount: {gt: 10000"), 6, None, "YAML syntax error"),
    ("wrong-type-number", GOOD.replace("{gt: 10000}", "{gt: lots}"), 5, "big", "'amount' is a number"),
    ("unknown-enum-value", GOOD.replace("- type: contract", "- category: credit_cards"), 11, "big-contract",
     "'credit_cards' is not a known value of 'category'"),
    ("bad-salience", GOOD.replace("salience: 10", "salience: high"), 3, "big", "salience must be an integer"),
    ("bad-priority", GOOD.replace("queue: contracts-legal-review", "priority: asap"), 14, "big-contract",
     "priority must be one of"),
    ("missing-then", GOOD.replace("    then:\n      derive: [high_value]\n", ""), 2, "big", "needs 'then'"),
    ("missing-sop", GOOD.replace("rules/legal-review.md", "rules/no-such-sop.md"), 15, "big-contract",
     "does not exist"),
    ("in-needs-list", GOOD.replace("- type: contract", "- type: {in: contract}"), 11, "big-contract",
     "'in' needs a non-empty list"),
]


@pytest.mark.parametrize("case", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistake_reported_with_line_and_rule(case: tuple[str, str, int, str | None, str]) -> None:
    _id, text, line, rule, fragment = case
    rs, problems = parse_source(RuleSource(files={"bad.yaml": text}), policies_dir=ROOT / "policies")
    assert rs is None
    hits = [p for p in problems if fragment in p.message]
    assert hits, [str(p) for p in problems]
    assert (hits[0].file, hits[0].line, hits[0].rule) == ("bad.yaml", line, rule), str(hits[0])


def test_good_text_is_valid() -> None:
    rs, problems = parse_source(RuleSource(files={"good.yaml": GOOD}), policies_dir=ROOT / "policies")
    assert problems == [] and rs is not None and [r.name for r in rs.rules] == ["big", "big-contract"]


def test_many_mistakes_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = (
        GOOD.replace("amount: {gt: 10000}", "ammount: {gt: 10000}")
        .replace("queue: contracts-legal-review", "queue: nowhere")
        .replace("role: legal,", "role: lawyers,")
    )
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    res = CliRunner().invoke(app, ["rules", "check", str(f)])
    assert res.exit_code == 1
    out = res.output
    assert "bad.yaml:5: [big] unknown fact 'ammount'" in out
    assert "bad.yaml:14: [big-contract] unknown queue 'nowhere'" in out
    assert "bad.yaml:15: [big-contract] unknown role 'lawyers'" in out
    assert "problem(s)" in out


def test_check_cli_json_and_success(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "check", str(ROOT / "policies" / "rules")])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output
    bad = tmp_path / "r.yaml"
    bad.write_text(GOOD.replace("{gt: 10000}", "{gt: lots}"))
    res = runner.invoke(app, ["rules", "check", str(bad), "--json"])
    assert res.exit_code == 1
    data = json.loads(res.output.strip().splitlines()[-1])
    assert data["ok"] is False and data["problems"][0]["line"] == 5 and data["problems"][0]["rule"] == "big"


def test_cross_file_derivation_is_allowed_and_checked(tmp_path: Path) -> None:
    first, _, second = GOOD.partition("  - name: big-contract\n")
    files = {"a.yaml": first, "b.yaml": "rules:\n  - name: big-contract\n" + second}
    rs, problems = parse_source(RuleSource(files=files), policies_dir=ROOT / "policies")
    assert problems == [] and rs is not None
    rs, problems = parse_source(RuleSource(files={"a.yaml": first}), policies_dir=ROOT / "policies")
    assert rs is None and "derived but no rule uses it" in problems[0].message


@pytest.mark.parametrize("case", MISTAKES[:10], ids=[m[0] for m in MISTAKES[:10]])
def test_invalid_file_never_replaces_running_ruleset(tmp_path: Path, case: tuple) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "r.yaml").write_text(GOOD)
    svc = RulesService(use_db=False, rules_dir=rules_dir)
    try:
        before = svc.evaluate({"type": "contract", "amount": 20000})
        assert before.queue == "contracts-legal-review"
        (rules_dir / "r.yaml").write_text(case[1] + "\n# edited\n")
        assert svc.refresh(force=True) is False
        assert svc.last_error and "r.yaml:" in svc.last_error
        after = svc.evaluate({"type": "contract", "amount": 20000})
        assert after.ruleset_version == before.ruleset_version
        assert after.model_dump() == before.model_dump()
        # A fixed file is picked up again.
        (rules_dir / "r.yaml").write_text(GOOD.replace("contracts-legal-review", "contracts-intake"))
        assert svc.refresh(force=True) is True
        assert svc.evaluate({"type": "contract", "amount": 20000}).queue == "contracts-intake"
    finally:
        svc.close()


def test_service_refuses_invalid_at_first_load(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "r.yaml").write_text(textwrap.dedent(MISTAKES[0][1]))
    svc = RulesService(use_db=False, rules_dir=rules_dir)
    with pytest.raises(PolicyFileError):
        svc.evaluate({"type": "contract"})


def test_nested_mistakes_point_at_their_own_line_and_all_are_reported() -> None:
    text = GOOD.replace(
        "      approval: {name: Legal sign-off, role: legal, sop: policies/sop/rules/legal-review.md}\n",
        "      approval:\n        name: Legal sign-off\n        role: lawyers\n        sop: policies/sop/rules/nope.md\n",
    ).replace("salience: 10", "salience: ten")
    rs, problems = parse_source(RuleSource(files={"bad.yaml": text}), policies_dir=ROOT / "policies")
    assert rs is None
    got = {(p.line, p.rule, p.message.split(" (")[0]) for p in problems}
    assert got == {
        (3, "big", "salience must be an integer in -10000..10000; got 'ten'"),
        (17, "big-contract", "unknown role 'lawyers'"),
        (18, "big-contract", "sop 'policies/sop/rules/nope.md' does not exist"),
    }, [str(p) for p in problems]
