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
import uuid
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from emulator.stack import EXAMPLES, ROOT
from handlers.ledger import MAX_ROUNDS
from tests.helpers import (
    FIXTURE_ROLE,
    LOCAL_RETRY,
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
    assert states_entered(execution) == ["CheckEventsForRuleMatch", "FoundMatchingRules", "TriggerNotifications", "Success"]
    assert json.loads(execution["output"])["delivered"] == 1
    (received,) = read_received(record)
    assert received["path"] == f"/hooks/{tenant}"
    assert signature_ok(received, "s3cret-for-test")
    # and a Standard Webhooks verifier accepts it as it arrived over HTTP
    verified = Webhook(b"s3cret-for-test").verify(received["body"].encode(), received["headers"])
    assert verified["notification_id"] == received["headers"]["webhook-id"]
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
    assert states_entered(execution) == ["CheckEventsForRuleMatch", "FoundMatchingRules", "Success"]


def test_a_receiver_answering_500_then_200_gets_one_message(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/fail-first/1/{tenant}")  # 500 once, then 204
    set_secret(stack, tenant, "k")
    execution = run_execution(stack, batch_input(tenant, events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)).payload)
    assert execution["status"] == "SUCCEEDED"
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "Success"]
    failures = [e["taskFailedEventDetails"]["error"] for e in execution["history"] if e["type"] == "TaskFailed"]
    assert failures == ["AllNotificationsFailedException"]  # retried by the state machine
    received = read_received(record)
    assert [r["status"] for r in received] == [500, 204]
    assert received[0]["notification_id"] == received[1]["notification_id"]  # the same notification, acknowledged once
    assert json.loads(execution["output"])["delivered"] == 1


def test_a_retry_re_attempts_only_what_is_still_undelivered(stack, webhook):
    # Two people's notifications; the first was delivered by an earlier attempt (the ledger says
    # so), the second fails once. Each attempt sends only the second: the retry delivers it.
    from handlers import ledger
    from handlers.rules.evaluate import match_record
    from handlers.rules.model import Rule

    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/fail-first/1/{tenant}")
    set_secret(stack, tenant, "k")
    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    other = json.loads(json.dumps(event))
    other["uid"], other["user"]["email_addr"] = f"{event['uid']}-2", "someone.else@example.com"
    done = match_record(tenant, Rule.model_validate(LOCK_RULE), event)["notification_id"]
    table = stack.resource("dynamodb").Table(stack.outputs["state_table"])
    table.put_item(Item={"pk": ledger.partition(tenant), "sk": done, "status": "delivered", "attempts": 1})
    execution = run_execution(stack, batch_input(tenant, [event, other]).payload)
    assert execution["status"] == "SUCCEEDED"
    failures = [e["taskFailedEventDetails"]["error"] for e in execution["history"] if e["type"] == "TaskFailed"]
    assert failures == ["AllNotificationsFailedException"]  # nothing new was delivered by the first attempt
    received = read_received(record)
    assert [r["status"] for r in received] == [500, 204]
    assert {r["notification_id"] for r in received} == {match_record(tenant, Rule.model_validate(LOCK_RULE), other)["notification_id"]}
    assert json.loads(execution["output"])["duplicates"] == 1  # the one delivered before


def test_the_sweep_retries_due_work_of_tenants_without_a_schedule(stack, webhook):
    from emulator.scheduler import fire_now

    base, record = webhook
    tenant = _tenant()  # no re-evaluation schedule of its own
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    _pending(stack, tenant, attempts=1)  # an attempt failed; it is due again
    sweep = stack.outputs["sweep_schedule"]
    fire_now(stack.endpoint, sweep["name"], sweep["group"])  # invokes the sweep function
    sfn = stack.client("stepfunctions")

    def swept() -> list[dict[str, Any]]:
        runs = sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
        return [e for e in runs if e["name"].startswith(f"sweep-{tenant}-") and e["status"] != "RUNNING"]

    (execution,) = wait_for(swept, timeout=90, what="the sweep's re-evaluation")
    assert execution["status"] == "SUCCEEDED"
    assert [r["path"] for r in read_received(record) if r["path"] == f"/hooks/{tenant}"] == [f"/hooks/{tenant}"]


def _pending(stack, tenant: str, attempts: int) -> dict[str, Any]:
    """The tenant's lock notification in the ledger, pending and due, after ``attempts`` failed attempts."""
    from handlers import ledger
    from handlers.rules.evaluate import match_record
    from handlers.rules.model import Rule

    (event,) = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    match = match_record(tenant, Rule.model_validate(LOCK_RULE), event)
    table = stack.resource("dynamodb").Table(stack.outputs["state_table"])
    table.put_item(Item={"pk": ledger.partition(tenant), "sk": match["notification_id"], "status": "pending", "attempts": attempts,
                         "match": json.dumps(match), "due_shard": ledger.due_shard(match["notification_id"]), "due_at": 0})  # fmt: skip
    return match


def test_the_last_failed_attempt_is_dead_lettered_with_its_reason(stack, webhook):
    from handlers import ledger

    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [LOCK_RULE], f"{base}/status/500/{tenant}")
    set_secret(stack, tenant, "k")
    out = stack.outputs
    table = stack.resource("dynamodb").Table(out["state_table"])
    # Every round but the last failed, and the last round's attempts but one: the next is the last.
    last = MAX_ROUNDS * (LOCAL_RETRY["max_attempts"] + 1)
    match = _pending(stack, tenant, attempts=last - 1)
    execution = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert len(read_received(record)) == 1  # the last attempt was made, and not retried: no retry can deliver it now
    assert execution["status"] == "SUCCEEDED" and json.loads(execution["output"])["dead_lettered"] == 1
    item = table.get_item(Key={"pk": ledger.partition(tenant), "sk": match["notification_id"]})["Item"]
    assert item["status"] == "dead_lettered" and item["attempts"] == last and "due_at" not in item
    sqs = stack.client("sqs")
    letters = sqs.receive_message(  # looked at, left visible for the redrive below
        QueueUrl=out["dead_notifications_queue_url"], MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )
    mine = [m for m in letters.get("Messages", []) if m["MessageAttributes"]["tenant_id"]["StringValue"] == tenant]
    (letter,) = mine
    body = json.loads(letter["Body"])
    # the match as stored, retried as what it was: its webhook delivery (stored before any channel settings)
    assert body["match"] == {**match, "delivery": {"channel": "webhook", "audience": "person", "notification_id": match["notification_id"]}}
    assert body["attempts"] == last and "HTTP 500" in body["reason"]
    # nothing is left to retry: re-evaluation finds no due work
    assert states_entered(run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant}))[-2:] == ["FoundMatchingRules", "Success"]

    # The webhook is fixed; the operator redrives the dead notifications and they are delivered.
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    redrive = subprocess.run([sys.executable, "-m", "cli", "redrive", "dead-notifications", "--tenant", tenant, "--endpoint", stack.endpoint,
                              "--queue-url", out["dead_notifications_queue_url"], "--table", out["state_table"]],
                             cwd=ROOT, capture_output=True, text=True, env={**os.environ, "AWS_ACCESS_KEY_ID": "testing",
                                                                           "AWS_SECRET_ACCESS_KEY": "testing"})  # fmt: skip
    assert redrive.returncode == 0, redrive.stderr
    assert json.loads(redrive.stdout)["requeued"] == 1
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert states_entered(again)[-2:] == ["TriggerNotifications", "Success"]
    assert [r["path"] for r in read_received(record)] == [f"/status/500/{tenant}", f"/hooks/{tenant}"]


# -- Retry and Catch, with test functions in the Task states ----------------------------------------


FAST_RETRY = {"interval_seconds": 1, "max_attempts": 3, "backoff_rate": 1}  # the same states, shorter waits


def _machine(stack, check_arn: str, trigger_arn: str, check_output: str = "$.Payload") -> str:
    definition = json.loads(render_asl(check_arn, trigger_arn, FAST_RETRY))
    definition["States"]["CheckEventsForRuleMatch"]["OutputPath"] = check_output
    return stack.client("stepfunctions").create_state_machine(
        name=f"fixture-{uuid.uuid4().hex[:8]}", roleArn=FIXTURE_ROLE, definition=json.dumps(definition),
    )["stateMachineArn"]  # fmt: skip


def _failures(execution: dict[str, Any]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in execution["history"] if e["type"] == "TaskFailed"]


def test_retry_absorbs_a_transient_lambda_error(stack, tmp_path: Path):
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky", {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "2"})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t", "trigger_payload_exists": False}, machine=_machine(stack, check, trigger))
    assert execution["status"] == "SUCCEEDED"
    assert counter.read_text() == "3"  # two transient failures, then success
    assert _failures(execution) == ["Lambda.ServiceException"] * 2
    assert states_entered(execution)[-2:] == ["FoundMatchingRules", "Success"]


def test_retry_gives_up_after_max_attempts(stack, tmp_path: Path):
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky", {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "99"})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t"}, machine=_machine(stack, check, trigger), timeout=120)
    assert execution["status"] == "FAILED" and execution["error"] == "Lambda.ServiceException"
    assert counter.read_text() == "4"  # the first attempt and MaxAttempts=3 retries


def test_a_timed_out_task_is_retried(stack, tmp_path: Path):
    # Every task is idempotent, so a timeout (the work may be half done) is retried like a transient error.
    counter = tmp_path / "calls"
    check = fixture_function(stack, "tests.fixtures.lambdas.flaky",
                             {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "1", "FLAKY_ERROR": "Sandbox.Timedout"})  # fmt: skip
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"tenant_id": "t", "trigger_payload_exists": False}, machine=_machine(stack, check, trigger))
    assert execution["status"] == "SUCCEEDED"
    assert _failures(execution) == ["Sandbox.Timedout"]


def test_an_unknown_exception_is_retried_twice_then_caught_into_fail(stack):
    check = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.raise_named", {})
    execution = run_execution(stack, {"trigger_payload_exists": True, "error": "UnknownException", "message": "KeyError: 'x'"},
                              machine=_machine(stack, check, trigger, "$.Payload.event"))  # fmt: skip
    assert execution["status"] == "FAILED" and execution["error"] == "UnknownException"
    assert _failures(execution) == ["UnknownException"] * 3
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "Fail"]
    assert json.loads(execution["cause"])["errorMessage"] == "KeyError: 'x'"


def test_a_handlers_unexpected_error_surfaces_as_unknown_exception(stack):
    # The real CheckEventsForRuleMatch, given a mode it does not know (a ValueError inside it). Its
    # task has no Catch (an error added to a full batch would pass the payload limit): the execution
    # fails with the task's error, under the same name.
    execution = run_execution(stack, {"mode": "bogus", "tenant_id": _tenant()})
    assert execution["status"] == "FAILED" and execution["error"] == "UnknownException"
    assert _failures(execution) == ["UnknownException"] * 3
    assert states_entered(execution) == ["CheckEventsForRuleMatch"]
    assert json.loads(execution["cause"])["errorMessage"].startswith("ValueError: unknown mode 'bogus'")


def test_a_task_output_without_the_boolean_fails_the_execution(stack):
    # FoundMatchingRules has no Default: matches are never dropped because an output lost its flag.
    check = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    execution = run_execution(stack, {"match_count": 1}, machine=_machine(stack, check, trigger, "$.Payload.event"))
    assert execution["status"] == "FAILED" and execution["error"] == "States.NoChoiceMatched"
    assert "TriggerNotifications" not in states_entered(execution)


def test_all_notifications_failed_is_retried_then_caught_into_the_fail_state(stack):
    check = fixture_function(stack, "tests.fixtures.lambdas.echo", {})
    trigger = fixture_function(stack, "tests.fixtures.lambdas.raise_named", {})
    # echo returns {"event": <input>, ...}: its output carries trigger_payload_exists through OutputPath
    machine = _machine(stack, check, trigger, "$.Payload.event")
    execution = run_execution(
        stack, {"trigger_payload_exists": True, "error": "AllNotificationsFailedException", "message": "webhook down"}, machine=machine
    )
    assert execution["status"] == "FAILED"
    assert execution["error"] == "AllNotificationsFailedException"
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "Fail"]
    assert json.loads(execution["cause"])["errorMessage"] == "webhook down"
    assert _failures(execution) == ["AllNotificationsFailedException"] * 4  # the first attempt and 3 retries


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
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "Success"]
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
    assert execution["status"] == "FAILED" and execution["error"] == "UnknownException"
    assert json.loads(execution["cause"])["errorMessage"].startswith("ClaimCheckError")
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
    assert states_entered(again)[-2:] == ["TriggerNotifications", "Success"]
    assert len(read_received(record)) == 1
