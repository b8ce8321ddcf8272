"""The embedded AWS's shims, exercised over its HTTP API like any AWS client would."""

from __future__ import annotations

import datetime as dt
import json
import socket
import struct
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sqs.models import Queue, SQSBackend

from emulator import requestlog, scheduler, sqs_esm, strict
from emulator.clients import REGION
from emulator.sfn_validate import validate
from emulator.sqs_esm import failed_ids
from tests.helpers import FIXTURE_ROLE, fixture_function, sigv4, wait_for

pytestmark = pytest.mark.integration
ROLE = FIXTURE_ROLE


def _invoke(env: Any, name: str, payload: Any) -> tuple[Any, str | None]:
    response = env.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_invoke_runs_the_handler_named_by_the_image_command(emulator):
    arn = fixture_function(emulator, "tests.fixtures.lambdas.echo", {"FIXTURE_VALUE": "from-terraform"})
    name = arn.split(":")[-1]
    payload, error = _invoke(emulator, name, {"hello": "world"})
    assert error is None
    assert payload["event"] == {"hello": "world"}
    assert payload["function_name"] == name
    assert payload["env"] == "from-terraform"  # the function's own environment variables
    assert 0 < payload["remaining_ms"] <= 10_000  # a real Lambda context with the function's timeout


def test_handler_errors_come_back_as_function_errors_with_their_type(emulator):
    name = fixture_function(emulator, "tests.fixtures.lambdas.raise_named")
    payload, error = _invoke(emulator, name, {"error": "AllNotificationsFailedException", "message": "nope"})
    assert error == "Unhandled"
    assert payload["errorType"] == "AllNotificationsFailedException"
    assert payload["errorMessage"] == "nope"


def test_a_bad_image_command_is_an_import_error_not_a_crash(emulator):
    name = fixture_function(emulator, "handlers.does_not_exist.handler")
    payload, error = _invoke(emulator, name, {})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"


def test_a_result_that_is_not_json_is_a_marshal_error(emulator):
    payload, error = _invoke(emulator, fixture_function(emulator, "tests.fixtures.lambdas.not_json"), {})
    assert (error, payload["errorType"]) == ("Unhandled", "Runtime.MarshalError")


def test_the_function_timeout_is_enforced(emulator):
    name = fixture_function(emulator, "tests.fixtures.lambdas.sleep", timeout=1)
    started = time.time()
    payload, error = _invoke(emulator, name, {"seconds": 30})
    assert error == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert time.time() - started < 15
    # the environment was replaced: the next call works
    payload, error = _invoke(emulator, name, {"seconds": 0})
    assert (payload, error) == ("woke up", None)


def test_invocation_logs_reach_cloudwatch(emulator):
    name = fixture_function(emulator, "tests.fixtures.lambdas.raise_named").split(":")[-1]
    _invoke(emulator, name, {"error": "Boom"})
    events = emulator.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    text = "\n".join(e["message"] for e in events)
    assert "START RequestId" in text and "Boom" in text and "END RequestId" in text


def test_validate_state_machine_definition_gives_real_diagnostics(emulator):
    sfn = emulator.client("stepfunctions")
    good = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    assert sfn.validate_state_machine_definition(definition=json.dumps(good))["result"] == "OK"
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}, "B": {"Type": "Succeed"}}}
    result = sfn.validate_state_machine_definition(definition=json.dumps(bad))
    assert result["result"] == "FAIL"
    codes = {(d["code"], d["location"]) for d in result["diagnostics"]}
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Next") in codes
    assert ("UNREACHABLE_STATE", "/States/B") in codes


def test_validation_catches_grammar_errors_and_dead_ends():
    assert validate("{not json")["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"
    dead_end = validate(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}))
    assert "must have a 'Next'" in dead_end["diagnostics"][0]["message"]
    retry = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:us-east-1:1:function:f",
                "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}],
                "End": True,
            }
        },
    }
    assert "BackoffRate" in validate(json.dumps(retry))["diagnostics"][0]["message"]


def test_partial_batch_failures_are_retried_then_dead_lettered(emulator, tmp_path: Path):
    sqs, lam = emulator.client("sqs"), emulator.client("lambda")
    dlq = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName=f"src-{uuid.uuid4().hex[:6]}",
        Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})},
    )["QueueUrl"]
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    seen = tmp_path / "seen.jsonl"
    name = fixture_function(emulator, "tests.fixtures.lambdas.sqs_partial", {"SEEN_FILE": str(seen)})
    lam.create_event_source_mapping(
        EventSourceArn=source_arn, FunctionName=name, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]
    )
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=source, MessageBody=body)

    deadline = time.time() + 60
    dead: list[dict[str, Any]] = []
    while time.time() < deadline and not dead:
        dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        time.sleep(0.5)
    assert [m["Body"] for m in dead] == ["fail"]  # only the reported failure, after maxReceiveCount receives
    deliveries = [json.loads(line) for line in seen.read_text().splitlines()]
    assert sorted(d["body"] for d in deliveries if d["body"].startswith("ok")) == ["ok-1", "ok-2"]  # deleted after one delivery
    assert [d["receive_count"] for d in deliveries if d["body"] == "fail"] == ["1", "2"]
    attrs = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def _mapped_queue(emulator, seen: Path, prefix: str, handler: str, **mapping: Any) -> tuple[str, str]:
    """A new queue mapped to a fixture function that records what it gets in ``seen``: its URL and
    the mapping's UUID."""
    sqs, lam = emulator.client("sqs"), emulator.client("lambda")
    queue = sqs.create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    name = fixture_function(emulator, handler, {"SEEN_FILE": str(seen)})
    return queue, lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=1, **mapping)["UUID"]


def test_an_idle_mapping_is_long_polled_and_a_message_sent_to_it_is_delivered_at_once(emulator, tmp_path: Path):
    sqs = emulator.client("sqs")
    seen = tmp_path / "seen.jsonl"
    queue, _ = _mapped_queue(emulator, seen, "idle", "tests.fixtures.lambdas.record_call")

    def delivered() -> int:
        return len(seen.read_text().splitlines()) if seen.exists() else 0

    # A poller of our own next to the emulator's (both poll the queue), to count what it asks.
    poller = sqs_esm.EventSourcePoller(emulator.endpoint, REGION)
    receives: list[str] = []
    poller.session.events.register("before-parameter-build.sqs.ReceiveMessage", lambda params, **_: receives.append(params["QueueUrl"]))
    poller.start()
    try:
        sqs.send_message(QueueUrl=queue, MessageBody="warm-up")  # the function's cold start is not what is timed
        wait_for(lambda: delivered() == 1 and queue in receives, 60, "the first message")
        receives.clear()
        idle = 2 * sqs_esm.LONG_POLL_SECONDS + 1
        time.sleep(idle)
        asked = receives.count(queue)
        # Long polls: each poller asks about once per LONG_POLL_SECONDS (short polls: 5 times a second).
        assert 1 <= asked <= sqs_esm.MAX_POLLERS * (idle / sqs_esm.LONG_POLL_SECONDS + 1)
        for n in range(2):
            # Sent while the pollers wait in their long polls: received as it arrives, not when one ends.
            sent = time.time()
            sqs.send_message(QueueUrl=queue, MessageBody=f"message {n}")
            while delivered() < 2 + n and time.time() < sent + 30:
                time.sleep(0.02)
            assert delivered() == 2 + n and time.time() - sent < sqs_esm.LONG_POLL_SECONDS / 2
            time.sleep(sqs_esm.LONG_POLL_SECONDS * 0.6)
    finally:
        poller.stop()


def test_a_disabled_mapping_delivers_nothing_until_enabled(emulator, tmp_path: Path):
    sqs, lam = emulator.client("sqs"), emulator.client("lambda")
    seen = tmp_path / "seen.jsonl"
    queue, uuid_ = _mapped_queue(emulator, seen, "disabled", "tests.fixtures.lambdas.sqs_partial", Enabled=False)
    takes_effect = sqs_esm.DISCOVERY_INTERVAL + sqs_esm.LONG_POLL_SECONDS + 1  # the poller's bound, and a second
    delivery = sqs_esm.LONG_POLL_SECONDS  # an enabled mapping's message takes well under that (test above)

    def bodies() -> list[str]:
        return [json.loads(line)["body"] for line in seen.read_text().splitlines()] if seen.exists() else []

    sqs.send_message(QueueUrl=queue, MessageBody="sent while disabled")
    time.sleep(delivery)
    assert bodies() == []
    lam.update_event_source_mapping(UUID=uuid_, Enabled=True)
    wait_for(lambda: bodies() == ["sent while disabled"], 30, "the message, once the mapping is enabled")
    lam.update_event_source_mapping(UUID=uuid_, Enabled=False)
    time.sleep(takes_effect)
    sqs.send_message(QueueUrl=queue, MessageBody="sent after disabling")
    time.sleep(delivery)
    assert bodies() == ["sent while disabled"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"  # waiting in the queue, never received


def test_batch_item_failure_parsing_follows_aws():
    assert failed_ids({"batchItemFailures": []}, {"a"}) == set()
    assert failed_ids(None, {"a"}) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a", "b"}) == {"a"}
    # an unknown or empty identifier fails the whole batch
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a"}) is None
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a"}) is None


def _pass_machine(sfn: Any) -> str:
    """A new state machine of one Pass state: a schedule's target."""
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    return str(sfn.create_state_machine(name=f"sm-{uuid.uuid4().hex[:6]}", roleArn=ROLE, definition=definition)["stateMachineArn"])


def test_schedules_fire_their_targets(emulator, tmp_path: Path):
    sfn, sch = emulator.client("stepfunctions"), emulator.client("scheduler")
    machine = _pass_machine(sfn)
    name = f"every-minute-{uuid.uuid4().hex[:6]}"
    sch.create_schedule(
        Name=name, ScheduleExpression="rate(1 minute)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine, "RoleArn": ROLE, "Input": json.dumps({"at": "<aws.scheduler.scheduled-time>"})},
    )  # fmt: skip
    # fire one now, as the demo and './build.sh fire-schedule' do
    session = emulator.session()
    started = scheduler.fire(
        session, emulator.endpoint, sch.get_schedule(Name=name), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    )
    execution = sfn.describe_execution(executionArn=started)
    assert execution["name"] == f"{name}-20260102T030405Z"
    assert json.loads(execution["input"]) == {"at": "2026-01-02T03:04:05Z"}


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(5 minutes)", "2026-01-01T00:00:00", "2026-01-01T00:05:00"),
        ("cron(0 8 ? * MON-FRI *)", "2026-11-27T09:00:00", "2026-11-30T08:00:00"),  # Friday after 8 -> Monday
        ("cron(30 6 1 * ? *)", "2026-11-27T00:00:00", "2026-12-01T06:30:00"),
        ("cron(0 12 ? * 2 *)", "2026-11-27T00:00:00", "2026-11-30T12:00:00"),  # AWS day 2 = Monday
        ("cron(0 0 1 1 ? 2030)", "2026-11-27T00:00:00", "2030-01-01T00:00:00"),
    ],
)
def test_schedule_expressions_follow_eventbridge(expression: str, after: str, expected: str):
    start = dt.datetime.fromisoformat(after).replace(tzinfo=dt.timezone.utc)
    got = scheduler.next_occurrence(expression, start)
    assert got is not None and got.strftime("%Y-%m-%dT%H:%M:%S") == expected


def test_cron_in_a_time_zone():
    start = dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.timezone.utc)
    got = scheduler.next_occurrence("cron(0 8 ? * MON-FRI *)", start, "Europe/Paris")
    assert got == dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.timezone.utc)  # 08:00 in Paris is 07:00 UTC in winter


@pytest.mark.parametrize("bad", ["cron(0 8 * * MON *)", "cron(0 8 * *)", "every day", "rate(0 minutes)"])
def test_invalid_schedule_expressions_are_rejected(bad: str):
    with pytest.raises(scheduler.ScheduleExpressionError):
        scheduler.next_occurrence(bad, dt.datetime.now(dt.timezone.utc))


def test_the_scheduler_thread_fires_a_due_schedule(emulator):
    sfn, sch = emulator.client("stepfunctions"), emulator.client("scheduler")
    machine = _pass_machine(sfn)
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=4)
    sch.create_schedule(
        Name=f"once-{uuid.uuid4().hex[:6]}", ScheduleExpression=f"at({soon:%Y-%m-%dT%H:%M:%S})",
        FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": machine, "RoleArn": ROLE, "Input": "{}"},
    )  # fmt: skip
    deadline = time.time() + 20
    while time.time() < deadline:
        if sfn.list_executions(stateMachineArn=machine)["executions"]:
            return
        time.sleep(0.5)
    pytest.fail("the one-time schedule did not start its state machine")


def test_the_scheduler_fetches_a_schedule_again_only_when_it_changed(emulator, monkeypatch: pytest.MonkeyPatch):
    sfn, sch = emulator.client("stepfunctions"), emulator.client("scheduler")
    machine = _pass_machine(sfn)
    name = f"hourly-{uuid.uuid4().hex[:6]}"
    target = {"Arn": machine, "RoleArn": ROLE, "Input": "{}"}
    sch.create_schedule(Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    # A scheduler of our own next to the emulator's, ticking five times a second, its requests
    # counted and what it fires recorded (not delivered: the emulator's delivers).
    fired: list[str] = []
    monkeypatch.setattr(scheduler, "fire", lambda session, endpoint, schedule, due: fired.append(schedule["Name"]) or "")
    ticker = scheduler.Scheduler(emulator.endpoint, REGION, tick=0.2)
    fetched: list[str] = []
    ticks: list[int] = []
    ticker.session.events.register("before-parameter-build.scheduler.GetSchedule", lambda params, **_: fetched.append(params["Name"]))
    ticker.session.events.register("before-parameter-build.scheduler.ListSchedules", lambda **_: ticks.append(1))
    ticker.start()
    try:
        wait_for(lambda: name in fetched, 20, "the schedule to be fetched")
        since = len(ticks)
        wait_for(lambda: len(ticks) >= since + 5, 20, "five more ticks")
        assert fetched.count(name) == 1  # once, not every tick
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
        sch.update_schedule(Name=name, ScheduleExpression=f"at({soon:%Y-%m-%dT%H:%M:%S})", FlexibleTimeWindow={"Mode": "OFF"},
                            Target=target, State="ENABLED")  # fmt: skip
        wait_for(lambda: name in fired, 20, "the updated schedule to fire")
        assert fetched.count(name) == 2
    finally:
        ticker.stop()


def test_an_update_without_a_state_leaves_the_schedule_enabled_as_aws_does(emulator):
    sch, sfn = emulator.client("scheduler"), emulator.client("stepfunctions")
    name, target = f"updated-{uuid.uuid4().hex[:6]}", {"Arn": _pass_machine(sfn), "RoleArn": ROLE, "Input": "{}"}
    sch.create_schedule(Name=name, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    sch.update_schedule(Name=name, ScheduleExpression="rate(2 hours)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    assert sch.get_schedule(Name=name)["State"] == "ENABLED"  # moto: no state, and the scheduler skipped it
    sch.update_schedule(Name=name, ScheduleExpression="rate(2 hours)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target,
                        State="DISABLED")  # fmt: skip
    assert sch.get_schedule(Name=name)["State"] == "DISABLED"


def test_a_send_message_batch_over_256_kib_with_attributes_is_refused_as_aws_does(emulator):
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName=f"strict-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    attributes = {"note": {"DataType": "String", "StringValue": "n" * 1000}}

    def batch(body_bytes: int) -> list[dict[str, Any]]:
        return [{"Id": str(n), "MessageBody": "b" * body_bytes, "MessageAttributes": attributes} for n in range(10)]

    per_attribute = len("note") + len("String") + 1000
    fits = (262_144 // 10) - per_attribute  # exactly at the limit, attributes included
    assert not sqs.send_message_batch(QueueUrl=url, Entries=batch(fits)).get("Failed")
    with pytest.raises(sqs.exceptions.BatchRequestTooLong):
        sqs.send_message_batch(QueueUrl=url, Entries=batch(fits + 1))  # the bodies alone would fit: moto would accept


def test_an_sqs_queue_changes_one_request_at_a_time(monkeypatch: pytest.MonkeyPatch):
    """Concurrent sends, receives and deletes, as the poller's and the producers' requests are served:
    each message received once, none lost, none left once deleted. Run on moto's models in this
    process, with threads switching as often as they can (the server's requests meet more rarely)."""
    for owner, name in ((SQSBackend, "receive_message"), (SQSBackend, "change_message_visibility"), (Queue, "delete_message")):
        monkeypatch.setattr(owner, name, getattr(owner, name))  # moto's own again after the test
    strict._sqs_queues_change_atomically()
    backend = SQSBackend(REGION, "123456789012")
    backend.create_queue("concurrent", VisibilityTimeout="60")
    bodies = [f"m{n}" for n in range(200)]
    for body in bodies[:50]:  # a backlog, as the consumers start
        backend.send_message("concurrent", body)
    received: list[str] = []
    errors: list[Exception] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            try:
                for message in backend.receive_message("concurrent", 10, 0, 60):
                    received.append(message.body)
                    backend.delete_message("concurrent", message.receipt_handle)
            except Exception as exc:  # e.g. moto's ReceiptHandleIsInvalid for a handle just received
                errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        consumers = [threading.Thread(target=consume) for _ in range(3)]
        for consumer in consumers:
            consumer.start()
        for body in bodies[50:]:
            backend.send_message("concurrent", body)
        deadline = time.time() + 30
        while len(received) < len(bodies) and time.time() < deadline and not errors:
            time.sleep(0.01)
        done.set()
        for consumer in consumers:
            consumer.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert sorted(received) == sorted(bodies)  # once each
    assert backend.get_queue("concurrent")._messages == []


def test_sqs_reports_the_sender_as_aws_does_by_its_credentials(emulator):
    # AWS reports the sending principal's id as SenderId; the embedded AWS reports the access key
    # it was sent with (moto alone reports one fixed id for everyone), so producers can be told apart.
    url = emulator.client("sqs").create_queue(QueueName=f"senders-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for key in ("AKIDPRODUCERONE", "AKIDPRODUCERTWO"):
        session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key="x", region_name="us-east-1")
        session.client("sqs", endpoint_url=emulator.endpoint).send_message(QueueUrl=url, MessageBody=key)
    received = emulator.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["SenderId"])["Messages"]
    assert sorted((m["Body"], m["Attributes"]["SenderId"]) for m in received) == [
        ("AKIDPRODUCERONE", "AKIDPRODUCERONE"),
        ("AKIDPRODUCERTWO", "AKIDPRODUCERTWO"),
    ]


@pytest.mark.parametrize(
    ("service", "call", "operation"),
    [
        ("sqs", lambda c: c.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:123456789012:x-dlq"), "StartMessageMoveTask"),
        ("sqs", lambda c: c.list_message_move_tasks(SourceArn="arn:aws:sqs:us-east-1:123456789012:x-dlq"), "ListMessageMoveTasks"),
        (
            "stepfunctions",
            lambda c: c.redrive_execution(executionArn="arn:aws:states:us-east-1:123456789012:execution:m:e"),
            "RedriveExecution",
        ),
    ],
)
def test_an_operation_the_embedded_aws_lacks_is_an_aws_error_naming_it(emulator, service, call, operation):
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = emulator.session().client(service, endpoint_url=emulator.endpoint, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        call(client)
    error = caught.value.response["Error"]
    assert error["Code"] == "NotImplemented" and operation in error["Message"] and "embedded AWS" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("method", "path", "status", "seconds", "logged"),
    [
        ("POST", "/2015-03-31/functions", 201, 0.01, True),  # CreateFunction
        ("PUT", "/2015-03-31/functions/f/configuration", 200, 0.01, True),
        ("DELETE", "/2015-03-31/event-source-mappings/uuid", 202, 0.01, True),
        ("POST", "/2015-03-31/functions/f/invocations", 200, 0.01, False),  # data plane: hundreds of thousands
        ("GET", "/2015-03-31/functions/f", 200, 0.01, False),
        ("POST", "/", 200, 0.01, False),
        ("POST", "/", 500, 0.01, True),  # moto failing
        ("POST", "/", 200, requestlog.SLOW_SECONDS, True),
    ],
)
def test_the_request_log_keeps_what_explains_a_failed_apply_and_no_more(method, path, status, seconds, logged):
    assert requestlog._worth_a_line(method, path, status, seconds) is logged


def _requests_logged(env: Any) -> list[str]:
    return [line for line in (env.workdir / "emulator.log").read_text().splitlines() if line.startswith("emulator.requests:")]


def test_a_lambda_create_is_logged_with_its_answer(emulator):
    name = fixture_function(emulator, "tests.fixtures.lambdas.echo").split(":")[-1]
    emulator.client("lambda").get_function(FunctionName=name)  # a read: not logged
    lines = wait_for(lambda: [line for line in _requests_logged(emulator) if "POST /2015-03-31/functions (lambda Boto3/" in line],
                     timeout=10, what="the create's line")  # fmt: skip
    assert any(" -> 201 in " in line for line in lines)
    assert not any(f"GET /2015-03-31/functions/{name}" in line for line in _requests_logged(emulator))


def test_a_connection_the_client_drops_before_its_answer_is_logged(emulator):
    """Werkzeug drops these silently; a lost answer is what a caller's SDK then retries."""
    # A Lambda request (by its signing scope; moto does not check the signature) with no effect: the
    # function does not exist, so the answer is a 404 that the closed connection never receives.
    request = (f"DELETE /2015-03-31/functions/never-{uuid.uuid4().hex[:8]} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: {sigv4('lambda')}\r\nContent-Length: 0\r\n\r\n").encode()  # fmt: skip
    before = len(_requests_logged(emulator))
    for _ in range(20):  # the reset has to beat the answer: nearly always at once, but it is a race
        with socket.create_connection(("127.0.0.1", emulator.port)) as client:
            client.sendall(request)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        try:
            wait_for(lambda: any("dropped the connection" in line for line in _requests_logged(emulator)[before:]),
                     timeout=2, what="the dropped connection's line")  # fmt: skip
            return
        except TimeoutError:
            continue
    pytest.fail(f"no dropped connection logged in 20 tries:\n{chr(10).join(_requests_logged(emulator)[before:])}")
