"""Terraform: every environment is formatted and valid; the local environment really applies onto the
embedded AWS and creates what the design says, least-privilege and encrypted; a second plan is empty."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator.stack import ROOT, terraform_env, terraform_init
from handlers import claim_check
from tests.helpers import LOCAL_RETRY, render_asl

pytestmark = pytest.mark.integration


def test_fmt_and_validate_every_environment():
    result = subprocess.run([sys.executable, "-m", "emulator.local", "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for env in ("local", "dev", "staging", "prod"):
        assert f"{env}: valid" in result.stdout


def test_raw_events_queue_has_a_dead_letter_queue(stack):
    sqs, out = stack.client("sqs"), stack.outputs
    attrs = sqs.get_queue_attributes(QueueUrl=out["raw_events_queue_url"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": out["raw_events_dlq_arn"], "maxReceiveCount": 5}
    assert int(attrs["VisibilityTimeout"]) >= 6 * 30  # >= 6 x the normalize timeout
    assert attrs["SqsManagedSseEnabled"] == "true"
    dlq = sqs.get_queue_attributes(QueueUrl=out["raw_events_dlq_url"], AttributeNames=["All"])["Attributes"]
    assert int(dlq["MessageRetentionPeriod"]) > int(attrs["MessageRetentionPeriod"])
    assert json.loads(dlq["RedriveAllowPolicy"]) == {"redrivePermission": "byQueue", "sourceQueueArns": [out["raw_events_queue_arn"]]}


def test_functions_share_one_image_with_a_command_each(stack):
    lam = stack.client("lambda")
    images = set()
    for stage, module in (("normalize", "normalize"), ("check_rules", "check_rules"), ("trigger_notifications", "trigger_notifications")):
        config = lam.get_function(FunctionName=stack.outputs["function_names"][stage])
        assert config["Configuration"]["PackageType"] == "Image"
        assert config["Configuration"]["ImageConfigResponse"]["ImageConfig"]["Command"] == [f"handlers.{module}.handler"]
        images.add(config["Code"]["ImageUri"])
    (image,) = images
    assert "@sha256:" in image  # deployed by digest, never by a moving tag
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    (mapping,) = [m for m in mappings if m["FunctionArn"] == stack.outputs["function_arns"]["normalize"]]
    assert mapping["EventSourceArn"] == stack.outputs["raw_events_queue_arn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_state_machine_definition_is_the_rendered_asl_file(stack):
    sfn, out = stack.client("stepfunctions"), stack.outputs
    deployed = sfn.describe_state_machine(stateMachineArn=out["state_machine_arn"])
    expected = render_asl(out["function_arns"]["check_rules"], out["function_arns"]["trigger_notifications"], LOCAL_RETRY)
    assert json.loads(deployed["definition"]) == json.loads(expected)
    assert deployed["type"] == "STANDARD"


def test_reevaluation_schedules_target_the_state_machine(stack):
    scheduler, out = stack.client("scheduler"), stack.outputs
    for tenant, name in out["schedule_names"].items():
        schedule = scheduler.get_schedule(Name=name, GroupName=out["schedule_group"])
        assert schedule["Target"]["Arn"] == out["state_machine_arn"]
        assert json.loads(schedule["Target"]["Input"])["tenant_id"] == tenant
        assert json.loads(schedule["Target"]["Input"])["mode"] == "reevaluate"
        assert schedule["ScheduleExpression"].startswith(("rate(", "cron("))
        assert schedule["State"] == "ENABLED"


def test_data_is_encrypted_at_rest(stack):
    out = stack.outputs
    ddb = stack.client("dynamodb")
    for table in (out["rules_table"], out["state_table"]):
        description = ddb.describe_table(TableName=table)["Table"]
        assert description["SSEDescription"]["Status"] == "ENABLED"
        assert description["SSEDescription"]["KMSMasterKeyArn"] == out["kms_key_arn"]
    assert ddb.describe_time_to_live(TableName=out["state_table"])["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    s3 = stack.client("s3")
    rule = s3.get_bucket_encryption(Bucket=out["claims_bucket"])["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = s3.get_public_access_block(Bucket=out["claims_bucket"])["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert stack.client("kms").get_key_rotation_status(KeyId=out["kms_key_arn"])["KeyRotationEnabled"]


def test_no_iam_policy_grants_wildcard_actions(stack):
    iam = stack.client("iam")
    checked = 0
    for role in iam.list_roles()["Roles"]:
        if not role["RoleName"].startswith("coachflow-local"):
            continue
        for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if "*" in a], f"{role['RoleName']}/{name}: {actions}"
                checked += 1
        assert not iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert checked >= 10


def _role_statements(stack, function_name: str) -> list[dict]:
    """Every statement of the inline policies of a function's execution role, as applied."""
    iam = stack.client("iam")
    role = stack.client("lambda").get_function(FunctionName=function_name)["Configuration"]["Role"].rsplit("/", 1)[-1]
    statements = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        statements += document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    assert not iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return statements


def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def test_claim_check_permissions_are_scoped_to_each_functions_prefixes(stack):
    out = stack.outputs
    prefixes = out["claim_check_prefixes"]
    assert prefixes == claim_check.PREFIXES  # Terraform's grants and the Python key scheme agree
    assert all(p.endswith("/") for p in prefixes.values())  # "events/*" must not also match "events-old/..."
    partition = out["kms_key_arn"].split(":")[1]
    bucket = f"arn:{partition}:s3:::{out['claims_bucket']}"
    objects = {kind: f"{bucket}/{prefix}*" for kind, prefix in prefixes.items()}
    expected = {
        "normalize": {("s3:PutObject", objects["events"]), ("s3:PutObject", objects["rejected"])},
        "check_rules": {
            ("s3:GetObject", objects["events"]),
            ("s3:PutObject", objects["matches"]),
            ("s3:PutObject", objects["recent"]),
            ("s3:GetObject", objects["recent"]),
        },  # fmt: skip
        "trigger_notifications": {("s3:GetObject", objects["matches"])},
    }
    # Listing is granted on the bucket itself, so only with a condition confining it to one prefix.
    listing = {"check_rules": {("s3:ListBucket", bucket, f"{prefixes['recent']}*")}}
    for stage, allowed in expected.items():
        granted, listed = set(), set()
        for statement in _role_statements(stack, out["function_names"][stage]):
            actions = _as_list(statement.get("Action", []))
            if not any(a.lower().startswith("s3:") for a in actions):
                continue
            assert statement["Effect"] == "Allow" and not {"NotAction", "NotResource"} & statement.keys(), f"{stage}: {statement}"
            assert all(a.lower().startswith("s3:") for a in actions), f"{stage}: S3 mixed with other services: {statement}"
            if actions == ["s3:ListBucket"]:
                (condition,) = statement["Condition"].values()
                listed |= {
                    (actions[0], resource, prefix)
                    for resource in _as_list(statement["Resource"])
                    for prefix in _as_list(condition["s3:prefix"])
                }
                continue
            granted |= {(action, resource) for action in actions for resource in _as_list(statement["Resource"])}
        assert not {resource for _, resource in granted} & {bucket, f"{bucket}/*"}, (
            f"{stage}: S3 permissions on the whole bucket: {granted}"
        )
        assert granted == allowed, f"{stage}: S3 permissions {sorted(granted)}, expected {sorted(allowed)}"
        assert listed == listing.get(stage, set()), f"{stage}: listing {sorted(listed)}"


def test_each_function_holds_only_the_dynamodb_actions_it_uses(stack):
    # What each function's code calls on which table (and index): nothing more is granted.
    out = stack.outputs
    region_account = out["state_machine_arn"].split(":")[3:5]
    table = lambda name: f"arn:aws:dynamodb:{region_account[0]}:{region_account[1]}:table/{name}"  # noqa: E731
    rules, state = table(out["rules_table"]), table(out["state_table"])
    expected = {
        "normalize": {("dynamodb:GetItem", rules)},  # the tenant's registered producers
        "check_rules": {("dynamodb:GetItem", rules), ("dynamodb:Query", rules)}
        | {(f"dynamodb:{a}", state) for a in ("GetItem", "Query", "PutItem", "UpdateItem")},
        "trigger_notifications": {("dynamodb:GetItem", rules), ("dynamodb:UpdateItem", state)},
        "sweep": {("dynamodb:Query", f"{state}/index/due")},
    }
    for stage, allowed in expected.items():
        granted = {
            (action, resource)
            for statement in _role_statements(stack, out["function_names"][stage])
            for action in _as_list(statement.get("Action", []))
            if action.startswith("dynamodb:")
            for resource in _as_list(statement["Resource"])
        }
        assert granted == allowed, f"{stage}: {sorted(granted)}"


def test_a_second_plan_changes_nothing(stack):
    result = stack.terraform("plan", "-detailed-exitcode", "-input=false", "-no-color", f"-var=endpoint={stack.endpoint}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_stacks_input_validations(tmp_path):
    # terraform/coachflow/tests/*.tftest.hcl: each validation planned against a mocked provider, the
    # refused values expected to fail (expect_failures) and the accepted ones to plan.
    env = terraform_env(tmp_path / "tfdata")
    stack = ROOT / "terraform" / "coachflow"
    init = terraform_init(stack, env, "-backend=false")
    assert init.returncode == 0, init.stdout + init.stderr
    result = subprocess.run(["terraform", f"-chdir={stack}", "test", "-no-color", "-filter=tests/validations.tftest.hcl"], env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip  # the guardrails suite: test_terraform_modules.py
    assert result.returncode == 0 and " 0 failed" in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]
    for run in ("claim_checks_must_outlive_every_pointer_to_them", "the_delivery_lease_must_outlast_the_function",
                "plain_http_webhooks_are_refused_outside_local", "private_webhook_networks_are_refused_outside_local"):  # fmt: skip
        assert f'run "{run}"... pass' in result.stdout
