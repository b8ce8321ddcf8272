"""Plan summaries for reviewers (cli.plan_summary): counts by action and type, destroys and access
changes called out; and ``./build.sh plan local`` against a fresh embedded AWS."""

from __future__ import annotations

import os
import subprocess

import pytest

from cli.plan_summary import changes, summarize
from emulator.stack import ROOT, STATE_ROOT


def _change(address: str, kind: str, actions: list[str], mode: str = "managed") -> dict[str, object]:
    return {"address": address, "type": kind, "mode": mode, "change": {"actions": actions}}


PLAN = {
    "resource_changes": [
        _change("aws_sqs_queue.raw", "aws_sqs_queue", ["create"]),
        _change("aws_dynamodb_table.state", "aws_dynamodb_table", ["delete", "create"]),
        _change("aws_s3_bucket.claims", "aws_s3_bucket", ["delete"]),
        _change("aws_iam_role_policy.normalize", "aws_iam_role_policy", ["update"]),
        _change("aws_lambda_function.normalize", "aws_lambda_function", ["update"]),
        _change("aws_kms_key.this", "aws_kms_key", ["no-op"]),
        _change("data.aws_iam_policy_document.x", "aws_iam_policy_document", ["read"], mode="data"),
    ]
}


def test_each_change_is_counted_once_under_its_action_and_type():
    assert sorted(changes(PLAN)) == [
        ("create", "aws_sqs_queue", "aws_sqs_queue.raw"),
        ("delete", "aws_s3_bucket", "aws_s3_bucket.claims"),
        ("replace", "aws_dynamodb_table", "aws_dynamodb_table.state"),
        ("update", "aws_iam_role_policy", "aws_iam_role_policy.normalize"),
        ("update", "aws_lambda_function", "aws_lambda_function.normalize"),
    ]
    text = summarize(PLAN)
    assert "**1 to add, 2 to change, 1 to replace, 1 to destroy**" in text
    assert "| `aws_lambda_function` |  | 1 |  |  |" in text


def test_destroys_replacements_and_access_changes_are_called_out_first():
    text = summarize(PLAN)
    risky = text.split("**Destroyed or replaced (data may be lost):**")[1].split("**Access changes")[0]
    assert "- destroy: `aws_s3_bucket.claims`" in risky and "- replace: `aws_dynamodb_table.state`" in risky
    assert "aws_sqs_queue.raw" not in risky
    access = text.split("**Access changes (IAM, key, bucket, queue policies, Lambda permissions):**")[1].split("|")[0]
    assert access.strip() == "- change: `aws_iam_role_policy.normalize`"
    assert text.index("Destroyed or replaced") < text.index("| Resource type |")


def test_an_empty_plan_says_no_changes():
    assert "**No changes.**" in summarize({"resource_changes": [_change("aws_kms_key.this", "aws_kms_key", ["no-op"])]})
    assert "Resource type" not in summarize({})


@pytest.mark.integration
def test_build_sh_plan_local_summarizes_the_whole_stack():
    left_before = set(STATE_ROOT.glob("plan-*"))
    result = subprocess.run(["./build.sh", "plan", "local"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "### Terraform plan: local" in out and "0 to change, 0 to replace, 0 to destroy" in out
    assert "- add: `module.coachflow.module.normalize.aws_iam_role_policy.this`" in out
    for kind in ("aws_sfn_state_machine", "aws_lambda_function", "aws_sqs_queue", "aws_dynamodb_table", "aws_kms_key"):
        assert f"| `{kind}` |" in out
    assert set(STATE_ROOT.glob("plan-*")) <= left_before  # its working directory is gone
