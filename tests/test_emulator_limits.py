"""AWS's payload and size limits, enforced by the embedded AWS where moto is lenient (emulator.strict):
each limit just within (exactly at it, where AWS allows it) and just over.

Sizes are bytes of UTF-8. Payloads are built mostly of "é" (two bytes, one character), so that an
emulator counting characters would let the "over" cases through. Step Functions measures compact JSON
(no spaces, non-ASCII unescaped).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers import limits
from tests.helpers import FIXTURE_ROLE, fixture_function, wait_execution

pytestmark = pytest.mark.integration

STATE_LIMIT = 262_144  # Step Functions: execution input, state input/output, task parameters and result
HISTORY_LIMIT = 25_000  # Step Functions: events in one execution's history
SQS_MESSAGE_LIMIT = 262_144  # the MaximumMessageSize Terraform's aws_sqs_queue gives coachflow's queues
LAMBDA_REQUEST_LIMIT = 6_291_456  # Lambda: synchronous Invoke request payload
LAMBDA_RESPONSE_LIMIT = 6_291_556  # Lambda: synchronous response, as AWS's error message states it
BOUNDS = pytest.mark.parametrize("over", [0, 1], ids=["at_the_limit", "one_byte_over"])


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def text_of(size: int) -> str:
    """A string of exactly ``size`` UTF-8 bytes, about half as many characters."""
    return "é" * (size // 2) + "x" * (size % 2)


def doc_of(size: int, **fields: Any) -> dict[str, Any]:
    """``{**fields, "pad": ...}`` whose compact JSON is exactly ``size`` bytes."""
    doc = {**fields, "pad": ""}
    doc["pad"] = text_of(size - len(compact(doc)))
    assert len(compact(doc)) == size
    return doc


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


# -- Step Functions ---------------------------------------------------------------------------------


def machine(env: Any, definition: dict[str, Any]) -> str:
    return str(
        env.client("stepfunctions").create_state_machine(
            name=f"limits-{uuid.uuid4().hex[:10]}", roleArn=FIXTURE_ROLE, definition=json.dumps(definition)
        )["stateMachineArn"]
    )


def execute(env: Any, arn: str, payload: Any, history: bool = True) -> dict[str, Any]:
    """Run an execution with ``payload`` sent as compact JSON (an ASCII-escaped "é" would weigh 6 bytes).

    Without ``history``, only its description: moto takes seconds to serialize 25,000 events."""
    sfn = env.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=compact(payload).decode())["executionArn"]
    if history:
        return wait_execution(env, arn, timeout=180)
    deadline = time.time() + 180
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING" and time.time() < deadline:
        time.sleep(0.3)
    return dict(execution)


def event_types(execution: dict[str, Any]) -> list[str]:
    return [event["type"] for event in execution["history"]]


def task_function(arn: str, **task: Any) -> dict[str, Any]:
    """A state machine of one lambda:invoke task called with the execution input as its payload."""
    state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": arn, "Payload.$": "$"}}
    return {"StartAt": "Call", "States": {"Call": {**state, "End": True, **task}}}


PASS = {"StartAt": "Pass", "States": {"Pass": {"Type": "Pass", "End": True}}}


@BOUNDS
def test_start_execution_refuses_an_input_over_the_limit(emulator, over: int):
    sfn = emulator.client("stepfunctions")
    arn = machine(emulator, PASS)
    payload = doc_of(STATE_LIMIT + over)
    if over:
        with pytest.raises(ClientError) as refused:
            sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=compact(payload).decode())
        assert error_code(refused) == "ValidationException"
        assert "at 'input'" in str(refused.value) and f"less than or equal to {STATE_LIMIT}" in str(refused.value)
        assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    else:
        execution = execute(emulator, arn, payload)
        assert execution["status"] == "SUCCEEDED"
        assert json.loads(execution["output"]) == payload


@BOUNDS
def test_a_state_output_over_the_limit_fails_the_execution(emulator, over: int):
    # The output {"a": A, "b": A, "c": C} is larger than the input {"a": A, "c": C}. moto measured with
    # spaces (5 more bytes here), "é" escaped (6 bytes) and refused exactly 262,144.
    duplicate = {"a.$": "$.a", "b.$": "$.a", "c.$": "$.c"}
    arn = machine(emulator, {"StartAt": "Grow", "States": {"Grow": {"Type": "Pass", "Parameters": duplicate, "End": True}}})
    a = text_of(100_000)
    c = text_of(STATE_LIMIT + over - len(compact({"a": a, "b": a, "c": ""})))
    execution = execute(emulator, arn, {"a": a, "c": c})
    if over:
        assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")
    else:
        assert execution["status"] == "SUCCEEDED"
        assert len(compact(json.loads(execution["output"]))) == STATE_LIMIT


@BOUNDS
def test_a_state_cannot_be_entered_with_an_input_over_the_limit(emulator, over: int):
    # A Map's ItemSelector makes each iteration's input: here larger than the Map's own input.
    selector = {"a.$": "$.a", "b.$": "$.a", "c.$": "$.c"}
    inner = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Result": "ok", "End": True}}}
    fan = {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": selector, "ItemProcessor": inner, "ResultPath": None, "End": True}
    arn = machine(emulator, {"StartAt": "Fan", "States": {"Fan": fan}})
    a = text_of(100_000)
    c = text_of(STATE_LIMIT + over - len(compact({"a": a, "b": a, "c": ""})))
    execution = execute(emulator, arn, {"items": [0], "a": a, "c": c})
    if over:
        assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")
        assert "PassStateEntered" not in event_types(execution)  # refused before entering
    else:
        assert execution["status"] == "SUCCEEDED"
        entered = next(e for e in execution["history"] if e["type"] == "PassStateEntered")
        assert len(compact(json.loads(entered["stateEnteredEventDetails"]["input"]))) == STATE_LIMIT


def _parameters_input(arn: str, size: int) -> dict[str, Any]:
    """An execution input that, scheduled as ``{"FunctionName": arn, "Payload": input}``, weighs ``size`` bytes."""
    wrapper = len(compact({"FunctionName": arn, "Payload": 0})) - 1
    payload = doc_of(size - wrapper)
    assert len(compact({"FunctionName": arn, "Payload": payload})) == size
    return payload


def _calls(seen: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []


@BOUNDS
def test_a_task_scheduled_with_parameters_over_the_limit_fails_without_calling(emulator, tmp_path: Path, over: int):
    seen = tmp_path / "calls.jsonl"
    arn = fixture_function(emulator, "tests.fixtures.lambdas.record_call", {"SEEN_FILE": str(seen)})
    payload = _parameters_input(arn, STATE_LIMIT + over)
    execution = execute(emulator, machine(emulator, task_function(arn)), payload)
    if over:
        assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")
        failed = next(e for e in execution["history"] if e["type"] == "TaskFailed")["taskFailedEventDetails"]
        assert (failed["error"], failed["resourceType"]) == ("States.DataLimitExceeded", "lambda")
        assert "TaskScheduled" not in event_types(execution)
        assert _calls(seen) == []  # the function never ran
    else:
        assert execution["status"] == "SUCCEEDED"
        assert [call["event_bytes"] for call in _calls(seen)] == [len(compact(payload))]


def test_a_data_limit_failure_is_retried_and_caught_by_name_only(emulator, tmp_path: Path):
    # AWS: "States.ALL ... can't catch the States.DataLimitExceeded terminal error"; naming it can.
    seen = tmp_path / "calls.jsonl"
    arn = fixture_function(emulator, "tests.fixtures.lambdas.record_call", {"SEEN_FILE": str(seen)})
    payload = _parameters_input(arn, STATE_LIMIT + 1)
    caught = {"Caught": {"Type": "Pass", "End": True}}

    by_all = task_function(arn, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}])
    by_all["States"].update(caught)
    execution = execute(emulator, machine(emulator, by_all), payload)
    assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")

    retry = [{"ErrorEquals": ["States.DataLimitExceeded"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    by_name = task_function(arn, Retry=retry, Catch=[{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}])
    by_name["States"].update(caught)
    execution = execute(emulator, machine(emulator, by_name), payload)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["Error"] == "States.DataLimitExceeded"
    assert event_types(execution).count("TaskFailed") == 2  # the first attempt and its retry
    assert _calls(seen) == []


def _task_result(execution: dict[str, Any]) -> dict[str, Any]:
    succeeded = next(e for e in execution["history"] if e["type"] == "TaskSucceeded")
    result: dict[str, Any] = json.loads(succeeded["taskSucceededEventDetails"]["output"])
    return result


@pytest.fixture(scope="module")
def sized_task(emulator) -> tuple[str, str, int]:
    """A lambda:invoke task whose function returns a string of the size asked; its result's wrapper
    (what the task result weighs beyond the payload), measured on the emulator's own result."""
    function = fixture_function(emulator, "tests.fixtures.lambdas.sized")
    arn = machine(emulator, task_function(function, ResultPath=None))
    # The wrapper holds the function response's Content-Length: measure it with a response of as
    # many digits (6) as the boundary cases' (a JSON-escaped "é" weighs 6 bytes in the response).
    execution = execute(emulator, arn, {"unit": "é", "count": 20_000})
    assert execution["status"] == "SUCCEEDED"
    result = _task_result(execution)
    return function, arn, len(compact(result)) - len(compact(result["Payload"]))


def test_a_lambda_task_result_has_aws_shape_within_coachflows_budget(emulator, sized_task: tuple[str, str, int]):
    function, arn, wrapper = sized_task
    result = _task_result(execute(emulator, arn, {"unit": "é", "count": 3}))
    assert list(result) == ["ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"]
    assert result["Payload"] == "ééé" and result["StatusCode"] == 200
    metadata = result["SdkHttpMetadata"]
    names = {"Connection", "Content-Length", "Content-Type", "Date", "X-Amz-Executed-Version", "x-amzn-Remapped-Content-Length",
             "X-Amzn-Trace-Id", "x-amzn-RequestId"}  # fmt: skip
    assert set(metadata["AllHttpHeaders"]) == set(metadata["HttpHeaders"]) == names
    assert metadata["AllHttpHeaders"]["Content-Length"] == [metadata["HttpHeaders"]["Content-Length"]] == ["20"]  # "\u00e9" x 3, quoted
    assert metadata["HttpStatusCode"] == 200
    assert result["SdkResponseMetadata"]["RequestId"] == metadata["HttpHeaders"]["x-amzn-RequestId"]
    assert wrapper < limits.TASK_RESULT_BYTES  # what coachflow's handlers leave room for


@BOUNDS
def test_a_lambda_task_result_over_the_limit_fails_the_task(emulator, sized_task: tuple[str, str, int], over: int):
    function, arn, wrapper = sized_task
    string_bytes = STATE_LIMIT + over - wrapper - 2  # the payload is a JSON string: its quotes
    execution = execute(emulator, arn, {"unit": "é", "count": string_bytes // 2, "tail": "x" * (string_bytes % 2)})
    if over:
        assert (execution["status"], execution["error"]) == ("FAILED", "States.DataLimitExceeded")
        assert "TaskFailed" in event_types(execution) and "TaskSucceeded" not in event_types(execution)
    else:
        assert execution["status"] == "SUCCEEDED"
        assert len(compact(_task_result(execution))) == STATE_LIMIT


def _looping_machine(loops: int, tail: int, sdk_task: bool = False) -> dict[str, Any]:
    """Count to ``loops`` (20 events a loop), then ``tail`` Pass states (2 events each) and Succeed.

    Events: ExecutionStarted, 20 per loop, 2 per tail state, Succeed's 2 and ExecutionSucceeded; a
    task (5 events: entered, scheduled, started, succeeded, exited) first when ``sdk_task``: the only
    way to an odd count. Nine Pass states and a Choice per loop keep the JSONPath work (slow in moto)
    to two expressions per 20 events."""
    states: dict[str, Any] = {"Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "P0"}}
    for i in range(8):
        states[f"P{i}"] = {"Type": "Pass", "Next": f"P{i + 1}" if i < 7 else "Check"}
    again = {"Variable": "$.n", "NumericLessThan": loops, "Next": "Count"}
    states["Check"] = {"Type": "Choice", "Choices": [again], "Default": "T0" if tail else "Done"}
    for i in range(tail):
        states[f"T{i}"] = {"Type": "Pass", "Next": f"T{i + 1}" if i + 1 < tail else "Done"}
    states["Done"] = {"Type": "Succeed"}
    if sdk_task:
        states["Sdk"] = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:listActivities", "ResultPath": None, "Next": "Count"}
    return {"StartAt": "Sdk" if sdk_task else "Count", "States": states}


def _history_events(loops: int, tail: int, sdk_task: bool) -> int:
    return 1 + (5 if sdk_task else 0) + 20 * loops + 2 * tail + 3


@BOUNDS
def test_an_execution_history_over_25000_events_fails_the_execution(emulator, over: int):
    loops, tail, sdk_task = (1249, 6, True) if over else (1249, 8, False)
    assert _history_events(loops, tail, sdk_task) == HISTORY_LIMIT + over
    small = execute(emulator, machine(emulator, _looping_machine(3, tail, sdk_task)), {"n": 0})
    assert len(small["history"]) == _history_events(3, tail, sdk_task)  # the count above, checked on a short run

    # The history is read only when it holds the failure: moto takes seconds to list 25,000 events.
    execution = execute(emulator, machine(emulator, _looping_machine(loops, tail, sdk_task)), {"n": 0}, history=bool(over))
    if over:
        assert (execution["status"], execution["error"]) == ("FAILED", "States.Runtime")
        assert execution["cause"] == "The execution reached the maximum number of history events (25000)."
        history = execution["history"]
        assert len(history) == HISTORY_LIMIT and [e["id"] for e in history[-2:]] == [HISTORY_LIMIT - 1, HISTORY_LIMIT]
        assert history[-1]["type"] == "ExecutionFailed" and history[-2]["type"] == "SucceedStateEntered"  # the 25,000th replaced
    else:
        assert execution["status"] == "SUCCEEDED"  # its 25,000th event, ExecutionSucceeded, within the limit


# -- SQS ----------------------------------------------------------------------------------------------


def queue(env: Any, maximum: int) -> str:
    sqs = env.client("sqs")
    return str(sqs.create_queue(QueueName=f"limits-{uuid.uuid4().hex[:10]}", Attributes={"MaximumMessageSize": str(maximum)})["QueueUrl"])


NOTE = {"note": {"DataType": "String", "StringValue": "é" * 500}}
NOTE_BYTES = len("note") + len("String") + 1000  # AWS counts an attribute's name, type and value


@BOUNDS
def test_a_message_over_the_queue_maximum_attributes_included_is_refused(emulator, over: int):
    sqs = emulator.client("sqs")
    url = queue(emulator, SQS_MESSAGE_LIMIT)
    body = text_of(SQS_MESSAGE_LIMIT - NOTE_BYTES + over)
    if over:
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=NOTE)
        assert error_code(refused) == "InvalidParameterValue"
        assert f"Message must be shorter than {SQS_MESSAGE_LIMIT} bytes" in str(refused.value)
    else:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=NOTE)
        (received,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
        assert received["Body"] == body


@BOUNDS
def test_each_batch_entry_is_held_to_the_queue_maximum(emulator, over: int):
    sqs = emulator.client("sqs")
    url = queue(emulator, 2048)  # small, so that the entry and not the batch total is over
    entries = [
        {"Id": "small", "MessageBody": "small"},
        {"Id": "sized", "MessageBody": text_of(2048 - NOTE_BYTES + over), "MessageAttributes": NOTE},
    ]
    if over:
        with pytest.raises(ClientError) as refused:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert error_code(refused) == "InvalidParameterValue"
        count = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        assert count["ApproximateNumberOfMessages"] == "0"  # no entry was sent
    else:
        sent = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert sorted(s["Id"] for s in sent["Successful"]) == ["sized", "small"] and not sent.get("Failed")


@BOUNDS
def test_a_batch_has_at_most_10_entries(emulator, over: int):
    sqs = emulator.client("sqs")
    url = queue(emulator, SQS_MESSAGE_LIMIT)
    entries = [{"Id": str(n), "MessageBody": "é"} for n in range(10 + over)]
    if over:
        with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):  # AWS.SimpleQueueService.TooManyEntriesInBatchRequest
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
    else:
        assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10


def test_a_body_of_allowed_characters_only_is_delivered_as_sent(emulator):
    sqs = emulator.client("sqs")
    url = queue(emulator, SQS_MESSAGE_LIMIT)
    # Every edge of the allowed set: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF
    body = "\t\n\r\x20\ud7ff\ue000\ufffd\U00010000\U0010ffff"
    sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "one", "MessageBody": body}])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == [body, body]


@pytest.mark.parametrize("character", ["\x00", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff"])
def test_a_body_with_a_character_sqs_does_not_allow_is_refused(emulator, character: str):
    sqs = emulator.client("sqs")
    url = queue(emulator, SQS_MESSAGE_LIMIT)
    body = f"before{character}after"
    for send in (
        lambda: sqs.send_message(QueueUrl=url, MessageBody=body),
        lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "one", "MessageBody": body}]),
    ):
        with pytest.raises(sqs.exceptions.InvalidMessageContents) as refused:
            send()
        assert f"Invalid binary character '#x{ord(character):X}' was found in the message body" in str(refused.value)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)


# -- Lambda -------------------------------------------------------------------------------------------


@BOUNDS
def test_a_synchronous_invoke_request_over_6_mb_is_refused_before_the_function_runs(emulator, tmp_path: Path, over: int):
    seen = tmp_path / "calls.jsonl"
    arn = fixture_function(emulator, "tests.fixtures.lambdas.record_call", {"SEEN_FILE": str(seen)})
    request = compact(doc_of(LAMBDA_REQUEST_LIMIT + over))
    lam = emulator.client("lambda")
    if over:
        with pytest.raises(ClientError) as refused:
            lam.invoke(FunctionName=arn, Payload=request)
        assert error_code(refused) == "RequestEntityTooLargeException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert f"Request must be smaller than {LAMBDA_REQUEST_LIMIT} bytes for the InvokeFunction operation" in str(refused.value)
        assert _calls(seen) == []
    else:
        response = lam.invoke(FunctionName=arn, Payload=request)
        assert "FunctionError" not in response
        assert [call["event_bytes"] for call in _calls(seen)] == [LAMBDA_REQUEST_LIMIT]


@BOUNDS
def test_a_synchronous_response_over_6_mb_becomes_a_function_error(emulator, over: int):
    arn = fixture_function(emulator, "tests.fixtures.lambdas.sized")
    # The Python runtime returns json.dumps(result): "é" escaped, 6 bytes; the quotes, 2.
    count, tail = divmod(LAMBDA_RESPONSE_LIMIT + over - 2, 6)
    event = {"unit": "é", "count": count, "tail": "x" * tail}
    response = emulator.client("lambda").invoke(FunctionName=arn, Payload=compact(event))
    payload = response["Payload"].read()
    if over:
        assert response["FunctionError"] == "Unhandled"
        assert json.loads(payload) == {
            "errorMessage": f"Response payload size exceeded maximum allowed payload size ({LAMBDA_RESPONSE_LIMIT} bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        }
    else:
        assert "FunctionError" not in response
        assert len(payload) == LAMBDA_RESPONSE_LIMIT
        assert json.loads(payload) == "é" * count + "x" * tail


def test_a_second_mapping_of_a_queue_to_the_same_function_is_refused(emulator):
    """AWS answers 409; moto made a second mapping, and the queue would have been polled twice."""
    lam, sqs = emulator.client("lambda"), emulator.client("sqs")
    function, other = fixture_function(emulator, "tests.fixtures.lambdas.echo"), fixture_function(emulator, "tests.fixtures.lambdas.echo")
    url = sqs.create_queue(QueueName=f"mapped-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    first = lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=function, Enabled=False)
    with pytest.raises(ClientError) as refused:
        lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=function.split(":")[-1], Enabled=False)
    assert refused.value.response["Error"]["Code"] == "ResourceConflictException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert first["UUID"] in refused.value.response["Error"]["Message"]
    lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=other, Enabled=False)  # another function may
    lam.delete_event_source_mapping(UUID=first["UUID"])
    lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=function, Enabled=False)  # once the first is gone
    mappings = lam.list_event_source_mappings(EventSourceArn=queue)["EventSourceMappings"]
    assert sorted(m["FunctionArn"] for m in mappings) == sorted([function, other])
