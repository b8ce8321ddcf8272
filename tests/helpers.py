"""Helpers shared by the integration tests."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.config import Config

from emulator import clients, observe
from emulator.stack import ROOT, LocalEnvironment
from handlers import batching, tenant_settings
from handlers.ingest import normalize_payload
from handlers.rules.model import Rule
from handlers.rules.store import RuleStore

ASL = ROOT / "asl" / "coachflow.asl.json"
FIXTURE_ROLE = "arn:aws:iam::123456789012:role/fixture"
_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                  "Principal": {"Service": "lambda.amazonaws.com"}}]}  # fmt: skip


def sigv4(service: str, access_key: str = "testing") -> str:
    """An Authorization header as an SDK signs for ``service`` (the embedded AWS reads the access key
    and the service from it, and checks no signature)."""
    return f"AWS4-HMAC-SHA256 Credential={access_key}/20261206/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


def fixture_function(env: LocalEnvironment, command: str, variables: dict[str, str] | None = None, timeout: int = 10) -> str:
    """A Lambda function of the image running ``command``, as Terraform would create one; its ARN."""
    iam = env.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName="fixture", AssumeRolePolicyDocument=json.dumps(_TRUST))
    return env.client("lambda").create_function(
        FunctionName=f"fixture-{uuid.uuid4().hex[:8]}", Role=FIXTURE_ROLE, PackageType="Image",
        Code={"ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/test@sha256:{'a' * 64}"},
        ImageConfig={"Command": [command]}, Environment={"Variables": variables or {}}, Timeout=timeout,
    )["FunctionArn"]  # fmt: skip


REFERENCE_RETRY = {"interval_seconds": 2, "max_attempts": 6, "backoff_rate": 2}  # Terraform's defaults
LOCAL_RETRY = {**REFERENCE_RETRY, "interval_seconds": 1}  # terraform/environments/local


def render_asl(check_arn: str, trigger_arn: str, retry: dict[str, int] | None = None) -> str:
    """asl/coachflow.asl.json rendered as Terraform's templatefile() renders it (numbers as
    Terraform writes them), with the state machine's retry settings (default: the reference's)."""
    values = {
        "check_events_function_arn": check_arn,
        "trigger_notifications_function_arn": trigger_arn,
        **{f"retry_{k}": str(v) for k, v in (retry or REFERENCE_RETRY).items()},
    }
    text = ASL.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def events_from(sample: Path, tenant: str, source: str = "auto") -> list[dict[str, Any]]:
    return [o.event for o in normalize_payload(sample.read_text(encoding="utf-8"), source, tenant) if o.kind == "normalized"]


def batch_input(tenant: str, events: list[dict[str, Any]]) -> batching.Batch:
    items = [batching.Item(e["uid"], e["time"], json.dumps(e, separators=(",", ":"), ensure_ascii=False)) for e in events]
    (batch,) = batching.plan(tenant, items)
    return batch


TEST_PRODUCER = "testing"  # the access key the tests' clients send with: the embedded AWS reports it as SenderId


def push(env: LocalEnvironment, tenant: str, rules: list[dict[str, Any]], webhook_url: str | None) -> None:
    """The tenant's rules and webhook, and the tests' client registered as its producer."""
    table = env.resource("dynamodb").Table(env.outputs["rules_table"])
    RuleStore(table).push(tenant, [Rule.model_validate(r) for r in rules], webhook_url=webhook_url)
    tenant_settings.update(table, tenant, producers=[TEST_PRODUCER])


def set_secret(env: LocalEnvironment, tenant: str, value: str) -> None:
    client = env.client("secretsmanager")
    name = f"{env.outputs['webhook_secret_prefix']}{tenant}"
    try:
        client.create_secret(Name=name, SecretString=value)
    except client.exceptions.ResourceExistsException:
        client.put_secret_value(SecretId=name, SecretString=value)


def start_execution(env: LocalEnvironment, payload: dict[str, Any] | str, name: str | None = None, machine: str | None = None) -> str:
    arn: str = env.client("stepfunctions").start_execution(
        stateMachineArn=machine or env.outputs["state_machine_arn"],
        name=name or f"test-{uuid.uuid4().hex}",
        input=payload if isinstance(payload, str) else json.dumps(payload),
    )["executionArn"]
    return arn


def run_execution(env: LocalEnvironment, payload: dict[str, Any] | str, name: str | None = None,
                  machine: str | None = None, timeout: float = 90) -> dict[str, Any]:  # fmt: skip
    return wait_execution(env, start_execution(env, payload, name, machine), timeout)


# moto serializes a long history slowly (25,000 events: seconds on an idle machine, over botocore's
# 60 s read timeout on a loaded one, where parallel test workers share the cores).
_HISTORY_READ = Config(read_timeout=600, retries={"total_max_attempts": 1})


def wait_execution(env: LocalEnvironment, arn: str, timeout: float = 90) -> dict[str, Any]:
    sfn = env.client("stepfunctions")
    deadline = time.time() + timeout
    while time.time() < deadline:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            execution["history"] = clients.client("stepfunctions", env.endpoint, config=_HISTORY_READ).get_execution_history(
                executionArn=arn, maxResults=1000
            )["events"]
            return execution
        time.sleep(0.3)
    raise TimeoutError(f"execution {arn} still running after {timeout}s")


def executions_named(env: LocalEnvironment, prefix: str) -> list[dict[str, Any]]:
    """The deployed state machine's executions whose names start with ``prefix`` (a batch's name is
    ``<tenant>-<batch id>``), from every page of the listing."""
    return [e for e in observe.execution_arns(observe.Environment.of(env)) if e["name"].startswith(prefix)]


def ended_executions(env: LocalEnvironment, prefix: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Those executions, once there are some and none is running. Only these: on the shared stack,
    other tests' executions may still be retrying for a minute."""

    def ended() -> list[dict[str, Any]]:
        found = executions_named(env, prefix)
        return found if found and all(e["status"] != "RUNNING" for e in found) else []

    found: list[dict[str, Any]] = wait_for(ended, timeout, f"the executions named {prefix}* to end")
    return found


def states_entered(execution: dict[str, Any]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in execution["history"] if "stateEnteredEventDetails" in e]


def read_received(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def signature_ok(entry: dict[str, Any], secret: str) -> bool:
    timestamp = entry["headers"]["x-coachflow-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + entry["body"].encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, entry["headers"]["x-coachflow-signature"])


def wait_for(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"timed out waiting for {what}")


def image_commands() -> dict[str, str]:
    """Function key (as Terraform's outputs name it) -> the handler its image command names, read
    from terraform/coachflow (tests/test_package.py pins the four)."""
    from emulator.stack import ROOT

    found = {}
    for path in (ROOT / "terraform" / "coachflow").glob("*.tf"):
        for block in re.split(r'\nmodule "', path.read_text())[1:]:
            name = block.split('"', 1)[0]
            command = re.search(r'command\s*=\s*\["(handlers\.[\w.]+)"\]', block)
            if command:
                found[name] = command.group(1)
    return found


# The context object the Lambda runtime interface client passes a handler, as source for the scripts
# tests run a handler with in a process of its own (reading ``spec``, a dict, and ``time``).
LAMBDA_CONTEXT = """
class Context:
    function_name = spec["function_name"]
    function_version = "$LATEST"
    invoked_function_arn = spec["function_arn"]
    memory_limit_in_mb = 256
    aws_request_id = "test-invocation"
    log_group_name = "/aws/lambda/" + spec["function_name"]
    log_stream_name = "test-invocation"
    _deadline = time.monotonic() + 60
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)
"""
