"""`./build.sh rules test`: raw vendor payloads as samples, --filter, --junit, and failures that say
which clause did not match."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cli.packs import RuleFileError, load_rule_files
from cli.rule_tests import explain, run
from emulator.stack import EXAMPLES, ROOT
from handlers.rules.model import Rule

LOCK = EXAMPLES / "okta" / "user_account_lock.json"  # normalizes to alex.rivera@example.com, class 3001, activity 9
RULE = """\
- rule_id: okta-lock
  match:
    class_uid: [3001]
    activity_id: [9]
    user:
      email_addr: [{suffix: "@example.com"}]
  tests:
    - name: the vendor's lock event
      raw: samples/lock.json
      source: okta
      expect: match
    - name: detected
      raw: samples/lock.json
      expect: match
- rule_id: acme-only
  match:
    class_uid: [3001]
    user:
      email_addr: [{suffix: "@acme.example"}]
      domain: [ACME]
  tests:
    - name: another domain
      raw: samples/lock.json
      expect: match
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "samples").mkdir()
    shutil.copy(LOCK, tmp_path / "samples" / "lock.json")
    (tmp_path / "okta.yaml").write_text(RULE)
    return tmp_path


def test_raw_payloads_are_normalized_as_the_pipeline_does_and_a_failure_names_the_clauses(rules_dir: Path):
    (found,) = load_rule_files(rules_dir)  # the payload in the tree is a sample, not a rule file
    results = run(found.rules, found.bases)
    assert [(r.rule_id, r.name, r.passed) for r in results] == [
        ("okta-lock", "the vendor's lock event", True),
        ("okta-lock", "detected", True),
        ("acme-only", "another domain", False),
    ]
    assert results[2].detail == (
        'no match: user.email_addr: event has "alex.rivera@example.com", pattern expects [{"suffix": "@acme.example"}]; '
        'no match: user.domain: event has absent, pattern expects ["ACME"]'
    )


def test_the_cli_prints_why_filters_and_writes_junit(rules_dir: Path):
    report = rules_dir / "report.xml"
    result = _cli("rules", "test", str(rules_dir), "--junit", str(report))
    assert result.returncode == 1
    assert f"FAIL {rules_dir / 'okta.yaml'}: acme-only: another domain: expected match, got no_match" in result.stdout
    assert 'no match: user.email_addr: event has "alex.rivera@example.com"' in result.stdout and "2/3 rule tests passed" in result.stdout
    suites = ET.parse(report).getroot()
    assert (suites.tag, suites.get("tests"), suites.get("failures")) == ("testsuites", "3", "1")
    cases = suites.findall("testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases][0] == ("okta-lock", "the vendor's lock event")
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "expected match, got no_match" and "user.domain" in (failure.text or "")

    by_rule = _cli("rules", "test", str(rules_dir), "--filter", "okta-lock")
    assert by_rule.returncode == 0 and "2/2 rule tests passed" in by_rule.stdout
    by_name = _cli("rules", "test", str(rules_dir), "--filter", "detected")
    assert by_name.returncode == 0 and "1/1 rule tests passed" in by_name.stdout
    nothing = _cli("rules", "test", str(rules_dir), "--filter", "zzz")
    assert nothing.returncode == 1 and "no rule test matches --filter 'zzz'" in nothing.stderr


@pytest.mark.parametrize("name", ["../outside.json", "../../../../etc/passwd", "/etc/passwd", "samples/../../outside.json"])
def test_a_raw_file_outside_the_rule_files_directory_is_refused(tmp_path: Path, name: str):
    (tmp_path / "outside.json").write_text(LOCK.read_text())
    (tmp_path / "rules").mkdir()
    rules = tmp_path / "rules" / "r.yaml"
    rules.write_text(f"- rule_id: r\n  match: {{class_uid: [3001]}}\n  tests:\n    - {{name: t, raw: {name!r}, expect: match}}\n")
    with pytest.raises(RuleFileError) as raised:
        load_rule_files(rules)
    assert str(raised.value) == (
        f"{rules}:1: [0]: rule r: tests[0].raw (line 4): {name!r} is outside {rules.parent}: "
        "a raw file is named relative to the rule file, in its directory or below"
    )
    assert _cli("rules", "validate", str(rules)).returncode == 1


def test_a_missing_raw_file_and_an_unknown_source_are_named(tmp_path: Path):
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "- rule_id: r\n  match: {class_uid: [3001]}\n  tests:\n    - {name: t, raw: nope.json, source: oktaa, expect: match}\n"
    )
    with pytest.raises(RuleFileError) as raised:
        load_rule_files(rules)
    message = str(raised.value)
    assert "tests[0].source (line 4): unknown source 'oktaa'; one of " in message and "okta, " in message
    assert f"tests[0].raw (line 4): no such file: {tmp_path / 'nope.json'}" in message


def test_a_test_has_either_an_event_or_a_raw_payload():
    for test, message in (
        ({"name": "t", "expect": "match"}, "either event"),
        ({"name": "t", "event": {}, "raw": "x.json", "expect": "match"}, "either event"),
        ({"name": "t", "event": {}, "source": "okta", "expect": "match"}, "source applies to a raw payload only"),
    ):
        with pytest.raises(ValueError, match=message):
            Rule.model_validate({"rule_id": "r", "match": {"class_uid": [1]}, "tests": [test]})


def test_explain_names_each_alternative_and_what_matched():
    rule = Rule.model_validate(
        {
            "rule_id": "r",
            "match": {"class_uid": [4010], "$or": [{"activity_name": ["Click Through"]}, {"malware": {"name": [{"exists": True}]}}]},
        }
    )
    event = {"class_uid": 4010, "activity_name": "Click", "malware": []}
    assert explain(rule, event) == (
        'alternative 1: no match: activity_name: event has "Click", pattern expects ["Click Through"] | '
        'alternative 2: no match: malware.name: event has absent, pattern expects [{"exists": true}]'
    )
    assert explain(rule, {**event, "malware": [{"name": "Phish"}]}) == (
        "alternative 2: every clause matched: class_uid: event has 4010, pattern expects [4010]; "
        'malware.name: event has "Phish", pattern expects [{"exists": true}]'
    )


def test_a_test_expecting_no_match_says_what_matched():
    rule = Rule.model_validate(
        {"rule_id": "r", "match": {"class_uid": [2004]}, "tests": [{"name": "t", "event": {"class_uid": 2004}, "expect": "no_match"}]}
    )
    (result,) = run([rule])
    assert not result.passed and result.detail == "every clause matched: class_uid: event has 2004, pattern expects [2004]"
