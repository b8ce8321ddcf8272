"""Every path of the state machine, on the embedded AWS, with real executions.

The deployed state machine (Terraform's render of asl/coachflow.asl.json) runs the real handlers;
for the Retry and Catch semantics a second state machine is rendered from the same ASL file with
test functions in the two Task states, because the Lambda service's own transient errors cannot
be produced here (the fixture raises an error of the same name instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from emulator.stack import EXAMPLES, ROOT
from tests.helpers import (
    FIXTURE_ROLE,
    batch_input,
    events_from,
    fixture_function,
    push,
    read_received,
    render_asl,
    run_execution,
    set_secret,
    signature_ok,
    states_entered,
    wait_for,
)

pytestmark = pytest.mark.integration

LOCK_RULE = {"rule_id": "account-locked", "title": "Your account was locked", "match": {"class_uid": [3001], "activity_id": [9]}}


def _tenant() -> str:
    return f"sm-{uuid.uuid4().hex[:10]}"


def test_matching_events_are_notified_over_signed_http(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "s3cret-for-test")
    events = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    batch = batch_input(tenant, events)
    execution = run_execution(stack, batch.payload, name=batch.execution_name)
    assert execution["status"] == "SUCCEEDED"
    assert states_entered(execution) == ["CheckEventsForRuleMatch", "FoundMatchingRules", "TriggerNotifications", "NotificationsSent"]
    assert json.loads(execution["output"])["delivered"] == 1
    (received,) = read_received(record)
    assert received["path"] == f"/hooks/{tenant}"
    assert signature_ok(received, "s3cret-for-test")
    body = json.loads(received["body"])
    assert (
        body["rule_id"] == "account-locked" and body["user"]["email_addr"] == events[0]["user"]["email_addr"] == "alex.rivera@example.com"
    )
    assert body["tenant_id"] == tenant and body["event"]["uid"] == events[0]["uid"]


def test_events_matching_no_rule_end_in_no_matching_rules(stack):
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], "https://example.invalid/never-called")
    batch = batch_input(tenant, events_from(EXAMPLES / "okta" / "logs_api_push_then_sso.json", tenant))
    execution = run_execution(stack, batch.payload)
    assert execution["status"] == "SUCCEEDED"
    assert states_entered(execution) == ["CheckEventsForRuleMatch", "FoundMatchingRules", "NoMatchingRules"]


def test_all_notifications_failed_is_caught_into_fail_then_redelivered_by_reevaluation(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/status/500/{tenant}")  # the receiver answers 500
    set_secret(stack, tenant, "another-secret")
    batch = batch_input(tenant, events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant))
    execution = run_execution(stack, batch.payload)
    assert execution["status"] == "FAILED"
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "NotificationsFailed"]
    assert execution["error"] == "AllNotificationsFailedException"
    assert "HTTP 500" in execution["cause"]
    assert len(read_received(record)) == 1  # it really tried, over HTTP

    # The webhook is fixed; once its backoff passed (1 s locally), re-evaluation delivers what failed.
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    time.sleep(1.5)
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant, "scheduled_time": "2026-11-27T10:00:00Z"})
    assert again["status"] == "SUCCEEDED"
    assert states_entered(again)[-1] == "NotificationsSent"
    delivered = [r for r in read_received(record) if r["path"] == f"/hooks/{tenant}"]
    assert len(delivered) == 1 and signature_ok(delivered[0], "another-secret")
    # and once delivered, re-evaluation has nothing left to do
    last = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert states_entered(last)[-1] == "NoMatchingRules"


def test_the_sweep_retries_due_work_of_tenants_without_a_schedule(stack, webhook):
    from emulator.scheduler import fire_now

    base, record = webhook
    tenant = _tenant()  # no re-evaluation schedule of its own
    push(stack, tenant, [LOCK_RULE], f"{base}/status/503/{tenant}")
    set_secret(stack, tenant, "k")
    failed = run_execution(stack, batch_input(tenant, events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)).payload)
    assert failed["status"] == "FAILED"
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    time.sleep(1.5)  # the local backoff (1 s)
    sweep = stack.outputs["sweep_schedule"]
    fire_now(stack.endpoint, sweep["name"], sweep["group"])  # invokes the sweep function
    sfn = stack.client("stepfunctions")

    def swept() -> list[dict[str, Any]]:
        runs = sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
        return [e for e in runs if e["name"].startswith(f"sweep-{tenant}-") and e["status"] != "RUNNING"]

    (execution,) = wait_for(swept, timeout=90, what="the sweep's re-evaluation")
    assert execution["status"] == "SUCCEEDED"
    assert [r["path"] for r in read_received(record) if r["path"] == f"/hooks/{tenant}"] == [f"/hooks/{tenant}"]


def test_the_last_failed_attempt_is_dead_lettered_with_its_reason(stack, webhook):
    from handlers import ledger
    from handlers.rules.evaluate import match_record
    from handlers.rules.model import Rule

    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/status/500/{tenant}")
    set_secret(stack, tenant, "k")
    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    match = match_record(tenant, Rule.model_validate(LOCK_RULE), event)
    out = stack.outputs
    table = stack.resource("dynamodb").Table(out["state_table"])
    # nine attempts failed already; the tenth is the last
    table.put_item(Item={"pk": ledger.partition(tenant), "sk": match["notification_id"], "status": "pending", "attempts": 9,
                         "match": json.dumps(match), "due_shard": ledger.due_shard(match["notification_id"]), "due_at": 0})  # fmt: skip
    execution = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert execution["status"] == "FAILED" and len(read_received(record)) == 1  # the last attempt was made
    item = table.get_item(Key={"pk": ledger.partition(tenant), "sk": match["notification_id"]})["Item"]
    assert item["status"] == "dead_lettered" and item["attempts"] == 10 and "due_at" not in item
    sqs = stack.client("sqs")
    letters = sqs.receive_message(  # looked at, left visible for the redrive below
        QueueUrl=out["dead_notifications_queue_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    mine = [m for m in letters.get("Messages", []) if m["MessageAttributes"]["tenant_id"]["StringValue"] == tenant]
    (letter,) = mine
    body = json.loads(letter["Body"])
    assert body["match"] == match and body["attempts"] == 10 and "HTTP 500" in body["reason"]
    # nothing is left to retry: re-evaluation finds no due work
    assert states_entered(run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant}))[-1] == "NoMatchingRules"

    # The webhook is fixed; the operator redrives the dead notifications and they are delivered.
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    redrive = subprocess.run([sys.executable, "-m", "cli", "redrive", "dead-notifications", "--tenant", tenant, "--endpoint", stack.endpoint,
                              "--queue-url", out["dead_notifications_queue_url"], "--table", out["state_table"]],
                             cwd=ROOT, capture_output=True, text=True, env={**os.environ, "AWS_ACCESS_KEY_ID": "testing",
                                                                           "AWS_SECRET_ACCESS_KEY": "testing"})  # fmt: skip
    assert redrive.returncode == 0, redrive.stderr
    assert json.loads(redrive.stdout)["requeued"] == 1
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert states_entered(again)[-1] == "NotificationsSent"
    assert [r["path"] for r in read_received(record)] == [f"/status/500/{tenant}", f"/hooks/{tenant}"]


# -- Retry and Catch, with test functions in the Task states ----------------------------------------


def _machine(stack, check_arn: str, trigger_arn: str) -> str:
    return stack.client("stepfunctions").create_state_machine(
        name=f"fixture-{uuid.uuid4().hex[:8]}", roleArn=FIXTURE_ROLE,
        definition=render_asl(check_arn, trigger_arn),
    )["stateMachineArn"]  # fmt: skip


def test_retry_absorbs_a_transient_lambda_error(stack, tmp_path: Path):
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky", {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "2"})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t", "match_count": 0}, machine=_machine(stack, check, trigger))
    assert execution["status"] == "SUCCEEDED"
    assert counter.read_text() == "3"  # two transient failures, then success
    failures = [e for e in execution["history"] if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["Lambda.ServiceException"] * 2
    assert states_entered(execution)[-1] == "NoMatchingRules"


def test_retry_gives_up_after_max_attempts(stack, tmp_path: Path):
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky", {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "99"})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t"}, machine=_machine(stack, check, trigger), timeout=120)
    assert execution["status"] == "FAILED" and execution["error"] == "Lambda.ServiceException"
    assert counter.read_text() == "5"  # the first attempt and MaxAttempts=4 retries


def test_a_timed_out_task_is_retried(stack, tmp_path: Path):
    # Every task is idempotent, so a timeout (the work may be half done) is retried like a transient error.
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky",
                             {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "1", "FLAKY_ERROR": "Sandbox.Timedout"})  # fmt: skip
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t", "match_count": 0}, machine=_machine(stack, check, trigger))
    assert execution["status"] == "SUCCEEDED"
    assert [e["taskFailedEventDetails"]["error"] for e in execution["history"] if e["type"] == "TaskFailed"] == ["Sandbox.Timedout"]


def test_any_other_error_is_retried_twice(stack, tmp_path: Path):
    # e.g. a table still throttled after the SDK's own retries: the handler raises a ClientError
    check = fixture_function(stack, "tests.fixtures.lambdas.raise_named", {})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"error": "ClientError"}, machine=_machine(stack, check, trigger), timeout=120)
    assert execution["status"] == "FAILED" and execution["error"] == "ClientError"
    assert len([e for e in execution["history"] if e["type"] == "TaskFailed"]) == 3


def test_catch_routes_all_notifications_failed_to_the_fail_state(stack):
    check = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.raise_named", {})
    # echo returns {"event": <input>, ...}: make its output carry match_count through OutputPath
    machine = _machine(stack, check, trigger)
    definition = json.loads(render_asl(check, trigger))
    definition["States"]["CheckEventsForRuleMatch"]["OutputPath"] = "$.Payload.event"
    stack.client("stepfunctions").update_state_machine(stateMachineArn=machine, definition=json.dumps(definition))
    execution = run_execution(stack, {"match_count": 1, "error": "AllNotificationsFailedException", "message": "webhook down"},
                              machine=machine)  # fmt: skip
    assert execution["status"] == "FAILED"
    assert execution["error"] == "AllNotificationsFailedException"
    assert states_entered(execution)[-1] == "NotificationsFailed"
    assert json.loads(execution["cause"])["errorMessage"] == "webhook down"
    # not retried: the notifications wait in the ledger for their backoff
    assert len([e for e in execution["history"] if e["type"] == "TaskFailed"]) == 1


def test_match_lists_too_big_for_a_state_output_travel_through_s3(stack, webhook):
    import copy

    base, record = webhook
    tenant = _tenant()
    # a long coaching text makes each match large: 150 of them exceed what a state may output
    rules = [{"rule_id": "every-okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}},
              "actions": [{"type": "notify", "template": "Hi {user}. " + "Here is how to stay safe. " * 70}]}]  # fmt: skip
    push(stack, tenant, rules, f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    template = events_from(EXAMPLES / "okta" / "logs_api_repeated_sign_in_failures.json", tenant)[0]
    events = []
    for n in range(150):
        event = copy.deepcopy(template)
        event["uid"] = f"{n:032x}"
        events.append(event)
    execution = run_execution(stack, batch_input(tenant, events).payload, timeout=240)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    check = json.loads(next(e for e in execution["history"] if e["type"] == "TaskSucceeded")["taskSucceededEventDetails"]["output"])
    output = check["Payload"]
    assert output["match_count"] == 150
    ref = output["matches"]["claim_check"]  # the matches travel as a claim-check pointer
    assert ref["key"] == f"matches/{tenant}/{output['batch_id']}.json"
    stored = json.loads(stack.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    assert len(stored) == 150 and ref["bytes"] > 240_000
    assert json.loads(execution["output"])["delivered"] == 150
    assert len(read_received(record)) == 150


def test_an_event_that_travels_as_a_claim_check_is_evaluated(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    bucket, key = stack.outputs["claims_bucket"], f"events/{tenant}/{event['uid']}.json"
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(event).encode())
    pointer = {"claim_check": {"bucket": bucket, "key": key, "uid": event["uid"], "bytes": 1}}
    execution = run_execution(stack, {"mode": "events", "tenant_id": tenant, "batch_id": "cc", "events": [pointer]})
    assert states_entered(execution)[-1] == "NotificationsSent"
    (received,) = read_received(record)
    assert json.loads(received["body"])["event"]["uid"] == event["uid"]


def test_a_claim_check_into_another_tenants_objects_is_refused(stack, webhook):
    base, record = webhook
    tenant, other = _tenant(), _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", other)
    bucket, key = stack.outputs["claims_bucket"], f"events/{other}/{event['uid']}.json"
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(event).encode())
    pointer = {"claim_check": {"bucket": bucket, "key": key, "uid": event["uid"], "bytes": 1}}
    execution = run_execution(stack, {"mode": "events", "tenant_id": tenant, "batch_id": "x", "events": [pointer]})
    assert execution["status"] == "FAILED" and execution["error"] == "ClaimCheckError"
    assert read_received(record) == []


def test_notifications_left_at_the_deadline_are_deferred_then_redelivered(stack, webhook):
    from handlers.rules.evaluate import match_record
    from handlers.rules.model import Rule

    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    match = match_record(tenant, Rule.model_validate(LOCK_RULE), event)
    # The real trigger handler with a 3 s timeout and a 1 s webhook timeout: it never has the 6 s it
    # keeps in reserve, so it must defer instead of starting a delivery it may not finish.
    out = stack.outputs
    function = fixture_function(stack, "handlers.trigger_notifications.handler", {
        "STATE_TABLE": out["state_table"], "RULES_TABLE": out["rules_table"], "CLAIMS_BUCKET": out["claims_bucket"],
        "WEBHOOK_SECRET_PREFIX": out["webhook_secret_prefix"], "WEBHOOK_TIMEOUT_SECONDS": "1", "ALLOW_HTTP_WEBHOOKS": "true",
        "POWERTOOLS_SERVICE_NAME": "coachflow", "POWERTOOLS_METRICS_NAMESPACE": "Coachflow"}, timeout=3)  # fmt: skip
    response = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps(
        {"tenant_id": tenant, "batch_id": "b", "match_count": 1, "matches": [match]}).encode())  # fmt: skip
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    assert (result["delivered"], result["failed"], result["deferred"]) == (0, 0, 1)
    assert read_received(record) == []
    table = stack.resource("dynamodb").Table(out["state_table"])
    item = table.get_item(Key={"pk": f"notif#{tenant}", "sk": match["notification_id"]})["Item"]
    assert item["status"] == "pending" and item["detail"].startswith("deferred")
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert states_entered(again)[-1] == "NotificationsSent"
    assert len(read_received(record)) == 1
