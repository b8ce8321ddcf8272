"""Rule checks of `rules validate` and `rules push` (cli/checks.py through cli/packs.py): fields the
normalized event can hold, templates the renderer can fill, unknown keys, and where each error is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.checks import rule_problems, template_problems
from cli.packs import RuleFileError, resolve_rule, resolve_tenant
from emulator.stack import ROOT
from handlers import notify
from handlers.events import NormalizedEvent
from handlers.rules.evaluate import match_record
from handlers.rules.matcher import compile_rules
from handlers.rules.model import Rule


def _problems(**document: Any) -> list[str]:
    rule = Rule.model_validate({"rule_id": "r", **document})
    return [f"{'.'.join(map(str, p.place))}: {p.message}" for p in rule_problems(rule)]


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "cli", "rules", "validate", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout
    return result.stderr.strip().removeprefix(f"invalid: {path}")


# -- patterns and keys against the normalized event ----------------------------------------------------


def test_a_field_the_event_never_holds_is_named_with_the_nearest_valid_one():
    assert _problems(match={"class_uid": [4010], "dispositon": ["Blocked"]}) == [
        "match.dispositon: the normalized event has no field 'dispositon'; did you mean 'disposition'?"
    ]
    assert _problems(match={"malware": {"nme": [{"exists": True}]}}) == [
        "match.malware.nme: the normalized event has no field 'malware.nme'; did you mean 'malware.name'?"
    ]
    assert _problems(match={"qqqqqqqq": ["x"]}) == ["match.qqqqqqqq: the normalized event has no field 'qqqqqqqq'"]


def test_fields_inside_or_and_lists_are_checked_too():
    problems = _problems(match={"class_uid": [1], "$or": [{"file": {"hashes": {"valeu": ["x"]}}}, {"app_name": ["y"]}]})
    assert problems == ["match.file.hashes.valeu: the normalized event has no field 'file.hashes.valeu'; did you mean 'file.hashes.value'?"]


def test_an_object_is_no_value_and_a_dotted_name_is_no_path():
    assert _problems(match={"user": [{"exists": True}]}) == [
        "match.user: 'user' is an object, never a value a pattern compares; match one of its fields: email_addr, name, uid, domain"
    ]
    assert _problems(match={"user.email_addr": ["a@b"]}) == [
        "match.user.email_addr: a field name holds no '.'; nest the fields instead (user: {email_addr: [...]})"
    ]


def test_threshold_and_suppress_keys_are_checked():
    assert _problems(match={"class_uid": [1]}, threshold={"count": 2, "window": 60, "key": "usr"}) == [
        "threshold.key: the normalized event has no field 'usr'; did you mean 'user'?"
    ]
    assert _problems(match={"class_uid": [1]}, suppress={"duration": 60, "key": "malware.name"}) == [
        "suppress.key: 'malware.name' is below the list 'malware': a key must be one value per event"
    ]
    # a person object (its identity), a value, and the first of a list of values are keys
    for key in ("user", "actor", "device.hostname", "url.categories", "malware"):
        assert _problems(match={"class_uid": [1]}, threshold={"count": 2, "window": 60, "key": key}) == [], key


def test_the_shipped_rules_pass_every_check():
    for tenant in ("acme", "globex"):
        _, rules = resolve_tenant(ROOT / "rules" / "tenants" / f"{tenant}.yaml")
        assert rules and all(rule_problems(rule) == [] for rule in rules)


def test_the_rule_model_and_matcher_stay_generic():
    # A stored rule that fails the checks still loads and matches: evaluation never refuses it
    # (rules/store.py reads documents with Rule.model_validate_json); only validate and push check.
    rule = Rule.model_validate_json('{"rule_id": "old", "match": {"dispositon": ["Blocked"]}, "actions": [{"template": "{usr}"}]}')
    assert compile_rules([rule]).match({"dispositon": "Blocked"}) == ["old"]
    assert notify.render(rule.actions[0].template, {"user": {"name": "Ann"}}) == "{usr}"


# -- templates ----------------------------------------------------------------------------------------


def test_template_problems_name_the_placeholder_and_the_nearest():
    assert template_problems("Hi {usr}") == ["unknown placeholder '{usr}'; did you mean '{user}'?"]
    assert template_problems("{event.uri}") == ["unknown placeholder '{event.uri}'; did you mean '{event.url}'?"]
    assert template_problems("{event.user.email_addr}")[0].startswith("unknown placeholder '{event.user.email_addr}'; ")
    unknown = template_problems("{0.__class__}")[0]
    assert unknown.startswith("unknown placeholder '{0.__class__}'; use one of {event.activity_name}, ") and "{user}" in unknown
    assert template_problems("a { b") == ["unbalanced '{' at character 3"]
    assert template_problems("a } b {user}") == ["unbalanced '}' at character 3"]
    assert template_problems("{{user}}") == ["unbalanced '{' at character 1", "unbalanced '}' at character 8"]
    assert template_problems("Hi {user}, {title} ({rule}) on {event.time_dt}.") == []


def _full_event() -> dict[str, Any]:
    """A valid normalized event with every field the event summary reads."""
    event = {
        "uid": "0" * 32, "time": 1, "time_dt": "1970-01-01T00:00:00.001Z", "class_uid": 4002, "class_name": "HTTP Activity",
        "category_uid": 4, "activity_id": 1, "activity_name": "Connect", "type_uid": 400201, "severity_id": 1,
        "severity": "Informational", "disposition_id": 2, "disposition": "Blocked", "message": "blocked",
        "metadata": {"tenant_uid": "acme", "product": {"vendor_name": "Zscaler", "name": "ZIA"}},
        "user": {"email_addr": "ann@example.com", "name": "Ann"}, "device": {"hostname": "WS-1"},
        "url": {"url_string": "https://x.example/"}, "app_name": "X", "finding_info": {"title": "T"}, "file": {"name": "f.zip"},
    }  # fmt: skip
    NormalizedEvent.model_validate(event)
    return event


MATCH = match_record("acme", Rule.model_validate({"rule_id": "r1", "match": {"class_uid": [4002]}, "title": "Risky"}), _full_event())


def test_every_placeholder_validation_accepts_renders_to_a_value():
    assert {f"event.{k}" for k in MATCH["event"]} | {"user", "rule", "title"} == notify.PLACEHOLDERS
    for name in sorted(notify.PLACEHOLDERS):
        template = f"<{{{name}}}>"
        assert template_problems(template) == [], name
        rendered = notify.render(template, MATCH)
        assert rendered not in ("<>", template) and "{" not in rendered, name


PIECES = st.sampled_from(sorted("{" + p + "}" for p in notify.PLACEHOLDERS) + ["{", "}", "{usr}", "{event.uri}", "{event.x.y}", "{}"])
TEMPLATES = st.lists(PIECES | st.text(st.characters(blacklist_categories=["Cs"]), max_size=6), max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEMPLATES)
def test_validation_accepts_exactly_the_templates_that_render_without_a_brace_left(template: str):
    # The match's values hold no brace, so a brace in the message is one the renderer left.
    rendered = notify.render(template, MATCH)  # total: never raises
    assert (template_problems(template) == []) == ("{" not in rendered and "}" not in rendered)


# -- where errors are reported ------------------------------------------------------------------------


def test_an_unknown_key_is_a_sentence_with_the_allowed_keys_and_its_line(tmp_path: Path):
    message = _error(tmp_path, "- rule_id: phish-click\n  match: {class_uid: [4010]}\n  treshold: {count: 3, window: 1h}\n")
    assert message == (
        ":1: [0]: rule phish-click: unknown key 'treshold' (line 3); allowed: rule_id, match, title, description, mode, enabled, "
        "severity, threshold, suppress, actions, tests, tags, params; did you mean 'threshold'?"
    )
    nested = _error(tmp_path, "- rule_id: r\n  match: {class_uid: [1]}\n  actions:\n    - type: notify\n      tempalte: hi\n")
    assert nested == (
        ":1: [0]: rule r: actions[0]: unknown key 'tempalte' (line 5); allowed: type, template, training_id, escalate_to, channels; "
        "did you mean 'template'?"
    )


def test_validate_reports_schema_and_template_errors_with_rule_and_lines(tmp_path: Path):
    text = "rules:\n  - rule_id: ok\n    match: {class_uid: [1]}\n  - rule_id: phish-click\n    match:\n      dispositon: [Blocked]\n"
    assert _error(tmp_path, text) == (
        ":4: rules[1]: rule phish-click: match.dispositon (line 6): the normalized event has no field 'dispositon'; "
        "did you mean 'disposition'?"
    )
    text = "- rule_id: hi\n  match: {class_uid: [1]}\n  actions:\n    - template: 'Hi {usr}'\n"
    assert _error(tmp_path, text) == ":1: [0]: rule hi: actions[0].template (line 4): unknown placeholder '{usr}'; did you mean '{user}'?"


def test_errors_beyond_five_are_counted(tmp_path: Path):
    text = "- rule_id: many\n  match: {" + ", ".join(f"f{i}: [1]" for i in range(7)) + "}\n"
    message = _error(tmp_path, text)
    assert message.count("the normalized event has no field") == 5 and message.endswith("; and 2 more")


def test_an_override_error_points_into_the_tenant_file(tmp_path: Path):
    (tmp_path / "packs").mkdir()
    (tmp_path / "tenants").mkdir()
    (tmp_path / "packs" / "p.yaml").write_text("rules:\n  - rule_id: r\n    match: {class_uid: [1]}\n")
    tenant = tmp_path / "tenants" / "t.yaml"
    tenant.write_text("tenant: t\npacks:\n  - pack: p\n    overrides:\n      r:\n        threshold: {count: 3, window: 1h, key: usr}\n")
    with pytest.raises(RuleFileError) as raised:
        resolve_tenant(tenant)
    assert str(raised.value) == (
        f"{tenant}:6: packs[0]: rule r: threshold.key: the normalized event has no field 'usr'; did you mean 'user'?"
    )


def test_json_rule_files_are_checked_without_lines():
    with pytest.raises(RuleFileError, match=r"^x.json: \[0\]: rule r: match.dispositon: the normalized event has no field"):
        resolve_rule({"rule_id": "r", "match": {"dispositon": ["x"]}}, "x.json: [0]")


def test_push_refuses_what_validate_refuses_before_any_aws_call(tmp_path: Path):
    bad = tmp_path / "acme.yaml"
    bad.write_text("tenant: acme\nrules:\n  - rule_id: oops\n    match: {dispositon: [Blocked]}\n")
    args = ["rules", "push", "--tenant", "acme", str(bad), "--table", "t", "--endpoint", "http://127.0.0.1:9"]
    result = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{bad}:3: rules[0]: rule oops: match.dispositon (line 4): the normalized event has no field 'dispositon'" in result.stderr
