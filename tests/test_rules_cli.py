"""`./build.sh rules validate|test|push` and the starter pack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from boto3.dynamodb.conditions import Key

from cli.packs import RuleFileError, load_pack, resolve_rule, resolve_tenant
from emulator.stack import ROOT
from handlers.ingest import normalize_payload
from handlers.rules.matcher import compile_rules

STARTER = ROOT / "rules" / "packs" / "starter.yaml"
SIX_VENDORS = {"CrowdStrike", "Zscaler", "Netskope", "Okta", "Microsoft", "Proofpoint"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_shipped_rules_validate_and_pass_their_tests():
    validate = _cli("rules", "validate", "rules")
    assert validate.returncode == 0, validate.stderr
    result = _cli("rules", "test", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_the_starter_pack_covers_the_six_vendors_with_tested_rules():
    rules = [resolve_rule(raw, rule_id) for rule_id, raw in load_pack(STARTER).items()]
    assert len(rules) >= 10
    vendors = set()
    for rule in rules:
        assert len(rule.tests) >= 2, rule.rule_id
        assert {t.expect for t in rule.tests} == {"match", "no_match"}, rule.rule_id
        vendors.update(rule.match["metadata"]["product"]["vendor_name"])
    assert SIX_VENDORS <= vendors


def test_starter_rules_fire_on_real_vendor_events(samples: Path):
    """Rule tests use small synthetic events; this checks the rules against real normalized samples."""
    rules = [resolve_rule(raw, rule_id) for rule_id, raw in load_pack(STARTER).items()]
    matcher = compile_rules(rules)
    fired = set()
    for path in sorted(samples.glob("*/*")):
        if path.name == "INDEX.md":
            continue
        for outcome in normalize_payload(path.read_text(encoding="utf-8"), "auto", "acme"):
            if outcome.kind == "normalized":
                fired.update(matcher.match(outcome.event))
    # The Safe Links sample is an ordinary allowed click: the click-through rule rightly stays quiet.
    assert fired == {r.rule_id for r in rules} - {"defender-safe-links-click-through"}


def test_validate_names_the_invalid_rule_and_place(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule_id: fine\n  match: {class_uid: [1]}\n- rule_id: broken\n  match: {user: {email_addr: [{suffix: 7}]}}\n")
    result = _cli("rules", "validate", str(bad))
    assert result.returncode == 1
    # the file and line of the rule, its index and id, the place in it and that place's line
    assert f"{bad}:3: [1]: rule broken: match.user.email_addr[0].suffix (line 4): expected a string, got int" in result.stderr


def test_a_failing_rule_test_exits_1_and_is_named(tmp_path: Path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"rule_id": "wrong-expectation", "match": {"class_uid": [2004]},
                                  "tests": [{"name": "a detection", "event": {"class_uid": 2004}, "expect": "no_match"}]}]))  # fmt: skip
    result = _cli("rules", "test", str(rules))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "wrong-expectation: a detection: expected no_match, got match" in result.stdout


def test_usage_errors_exit_2(tmp_path: Path):
    assert _cli("rules", "validate", str(tmp_path / "missing")).returncode == 2
    assert _cli("rules", "push", "--tenant", "acme").returncode == 2
    assert _cli("rules", "frobnicate", ".").returncode == 2


@pytest.mark.integration
def test_push_stores_a_tenants_resolved_rules_and_rejects_invalid_ones(stack, tmp_path: Path):
    table_name = stack.outputs["rules_table"]
    args = ["--table", table_name, "--endpoint", stack.endpoint]
    pushed = _cli("rules", "push", "--tenant", "acme", "rules", *args, "--webhook-url", "https://hooks.example/acme")
    assert pushed.returncode == 0, pushed.stderr
    summary = json.loads(pushed.stdout)
    table = stack.resource("dynamodb").Table(table_name)
    items = table.query(KeyConditionExpression=Key("tenant_id").eq("acme"))["Items"]
    rule_ids = {i["rule_id"] for i in items} - {"#tenant"}
    assert len(rule_ids) == summary["rules"] == 14
    settings = next(i for i in items if i["rule_id"] == "#tenant")
    assert settings["ruleset_version"] == summary["version"] and settings["webhook_url"] == "https://hooks.example/acme"
    tuned = json.loads(next(i for i in items if i["rule_id"] == "okta-repeated-sign-in-failures")["document"])
    assert tuned["threshold"]["count"] == 5  # acme's override, not the pack's 3

    bad = tmp_path / "acme.yaml"
    bad.write_text("tenant: acme\nrules:\n  - rule_id: oops\n    match: {a: [{numeric: ['>', x]}]}\n")
    rejected = _cli("rules", "push", "--tenant", "acme", str(bad), *args)
    assert rejected.returncode == 1 and "rule oops: match.a[0].numeric[1] (line 4): expected a number" in rejected.stderr
    after = table.query(KeyConditionExpression=Key("tenant_id").eq("acme"))["Items"]
    assert {i["rule_id"] for i in after} - {"#tenant"} == rule_ids  # nothing was written


def _tenant_with_pack(root: Path, pack: str) -> Path:
    """rules/tenants/evil.yaml under root, enabling the pack named ``pack``; rules/packs exists."""
    (root / "rules" / "packs").mkdir(parents=True)
    (root / "rules" / "tenants").mkdir(parents=True)
    tenant = root / "rules" / "tenants" / "evil.yaml"
    tenant.write_text(f"tenant: evil\npacks:\n  - pack: {json.dumps(pack)}\n")
    return tenant


@pytest.mark.parametrize(
    "name", ["../../../outside", "../../../../tmp/outside", "../outside", "/abs/outside", "sub/pack", "", ".", "star*", "pack.yaml"]
)
def test_a_pack_reference_is_a_plain_name(tmp_path: Path, name: str):
    # A pack outside the packs directory, with valid rules: a reference that climbed out would load it.
    (tmp_path / "outside.yaml").write_text(STARTER.read_text())
    tenant = _tenant_with_pack(tmp_path / "repo", name)
    with pytest.raises(RuleFileError) as raised:
        resolve_tenant(tenant)
    message = str(raised.value)
    assert message.startswith(f"{tenant}: packs[0].pack: ") and "plain name" in message, message
    result = _cli("rules", "validate", str(tenant))
    assert result.returncode == 1 and f"{tenant}: packs[0].pack: " in result.stderr


def test_a_pack_that_resolves_outside_the_packs_directory_is_refused(tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(STARTER.read_text())
    tenant = _tenant_with_pack(tmp_path / "repo", "linked")
    (tmp_path / "repo" / "rules" / "packs" / "linked.yaml").symlink_to(outside)  # a plain name, but a way out
    with pytest.raises(RuleFileError, match=r"packs\[0\]\.pack: pack 'linked' resolves outside"):
        resolve_tenant(tenant)


def test_a_plain_pack_name_still_resolves(tmp_path: Path):
    tenant = _tenant_with_pack(tmp_path / "repo", "starter-2_b")
    (tmp_path / "repo" / "rules" / "packs" / "starter-2_b.yaml").write_text(STARTER.read_text())
    assert len(resolve_tenant(tenant)[1]) == len(load_pack(STARTER))


def test_a_yaml_alias_inside_itself_is_an_invalid_rule_not_a_traceback(tmp_path: Path):
    # Found by tests/test_fuzz.py: substituting parameters recursed forever into the cycle.
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text("tenant: acme\nrules:\n  - rule_id: r\n    match:\n      a: &x [x, *x]\n")
    result = subprocess.run([sys.executable, "-m", "cli", "rules", "validate", str(cyclic)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "holds itself" in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_a_named_table_never_lands_on_the_embedded_aws_of_up(tmp_path, monkeypatch):
    # './build.sh up' leaves its endpoint in .coachflow/<instance>/endpoint; naming a table means a
    # real environment, so the running embedded AWS is not used unless asked for (--endpoint).
    import argparse

    import cli.__main__ as cli_main

    monkeypatch.setattr(cli_main, "_instance_dir", lambda: tmp_path)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    (tmp_path / "endpoint").write_text("http://127.0.0.1:4566\n")
    assert cli_main._endpoint(argparse.Namespace(endpoint=None, table="coachflow-prod-rules")) is None
    assert cli_main._endpoint(argparse.Namespace(endpoint=None, table=None)) == "http://127.0.0.1:4566"
    assert cli_main._endpoint(argparse.Namespace(endpoint="http://127.0.0.1:9", table="t")) == "http://127.0.0.1:9"
