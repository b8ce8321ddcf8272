"""Where moto is kinder than AWS (or wrong), the embedded AWS is made as strict as AWS, so that a test
cannot pass only because the emulator is lenient.

Step Functions (Standard): 262,144 bytes of UTF-8, measured on compact JSON (``,`` and ``:``
separators, non-ASCII unescaped); exactly 262,144 is allowed. moto measures with ``<`` on
``json.dumps`` with spaces and ASCII escapes, and checks less.

- ``StartExecution`` ``input`` over the limit: ``ValidationException`` (moto accepts any size);
- a state entered with an input over the limit: the execution fails with
  ``States.DataLimitExceeded`` (moto does not check);
- a state's output and a task's result over the limit: ``States.DataLimitExceeded``, measured as
  AWS measures (moto's ``<`` and separators fixed);
- a task's parameters as scheduled (``{"FunctionName", "Payload"}`` for ``lambda:invoke``) over the
  limit: the task fails with ``States.DataLimitExceeded`` before anything is invoked (moto does not
  check);
- ``States.ALL`` does not catch ``States.DataLimitExceeded`` (moto's does); naming it does;
- a Map iteration failing with a ``States.`` error fails the Map with that error (moto turned any
  into ``States.Runtime``);
- the result of ``arn:aws:states:::lambda:invoke`` has AWS's shape, ``SdkHttpMetadata`` (every
  response header, twice) and ``SdkResponseMetadata`` included, so that a result that fits only
  without them does not pass (moto keeps ``StatusCode``, ``ExecutedVersion`` and ``Payload``);
- an execution history holds at most 25,000 events: the execution fails with ``States.Runtime``,
  the failure being event 25,000 (moto records any number);
- a Choice state with no matching rule and no ``Default`` fails the execution with
  ``States.NoChoiceMatched`` (moto: a bare RuntimeError).

SQS:

- ``SendMessage`` and each ``SendMessageBatch`` entry: body and message attributes (names, data
  types, values) together at most the queue's ``MaximumMessageSize`` bytes (``InvalidParameterValue``);
  moto counts the body only, in characters;
- ``SendMessageBatch``: the messages together at most 262,144 bytes, attributes included
  (``BatchRequestTooLong``); moto counts bodies only, in characters, against 1 MiB (AWS's limit
  since 2025: this one is kept stricter, see ``SQS_BATCH_BYTES``);
- a body with a character outside XML's character set is refused (``InvalidMessageContents``);
  moto accepts any;
- a queue's messages change one request at a time: moto's ReceiveMessage, DeleteMessage and
  ChangeMessageVisibility change them from each request's thread without a lock, so a message sent
  while two deletes overlapped was lost, a deleted message came back, and two concurrent receives
  could both get the same message.

Lambda:

- a synchronous ``Invoke`` whose request payload is over 6,291,456 bytes is refused before the
  function runs (``RequestEntityTooLargeException``, HTTP 413); moto runs it;
- a synchronous response over 6,291,556 bytes becomes a ``Function.ResponseSizeTooLarge`` function
  error; moto refuses from about 6,000,000 bytes, measured with ``sys.getsizeof``;
- a second event source mapping of the same queue to the same function is refused
  (``ResourceConflictException``, HTTP 409); moto makes it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import json
import re
import secrets
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.responses import LambdaResponse
from moto.sqs.exceptions import BatchRequestTooLong, InvalidParameterValue, SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser import quotas
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import StateTaskServiceLambda
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.utilities.aws_headers import amz_crc32

# Step Functions quotas (docs: step-functions/latest/dg/service-quotas.html), "Maximum input or output
# size for a task, state, or execution": "262,144 bytes of data as a UTF-8 encoded string. This quota
# affects tasks (activity, Lambda function, or integrated service), state or execution output, and
# input data when scheduling a task, entering a state, or starting an execution." The API model gives
# each of those fields (StartExecution input, StateEntered input, TaskScheduled parameters...)
# "Maximum length of 262144", "expressed as bytes in UTF-8 encoding".
STATE_PAYLOAD_BYTES = 262_144
# Same page, "Maximum execution history size": "25,000 events in a single state machine execution
# history. If the execution history reaches this quota, the execution will fail."
EXECUTION_HISTORY_EVENTS = 25_000
# SendMessageBatch, all messages together. The SQS API reference now gives 1 MiB (1,048,576 bytes),
# for a batch as for a queue's MaximumMessageSize (raised from 256 KiB in 2025); this stays at the
# 256 KiB coachflow budgets for (handlers.normalize), stricter than AWS today.
SQS_BATCH_BYTES = 262_144
# Lambda quotas (docs: lambda/latest/dg/gettingstarted-limits.html): "Invocation payload (request and
# response): 6 MB each for request and response (synchronous)". AWS's refusal of a request says
# "Request must be smaller than 6291456 bytes for the InvokeFunction operation"; its function error
# for a response says "... maximum allowed payload size (6291556 bytes)": 100 bytes more.
LAMBDA_SYNC_REQUEST_BYTES = 6_291_456
LAMBDA_SYNC_RESPONSE_BYTES = 6_291_556


def payload_bytes(value: Any) -> int:
    """The size Step Functions measures: compact JSON, non-ASCII unescaped, in UTF-8 bytes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return len(text.encode("utf-8", "surrogatepass"))


def _json_default(value: Any) -> str:
    # As moto's own encoder (asl.utils.encoding): dates as ISO 8601, anything else as str().
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


def within_state_quota(value: Any) -> bool:
    return payload_bytes(value) <= STATE_PAYLOAD_BYTES


def _data_limit_failure(env: Any, cause: str, event_type: Any, details_key: str, **details: Any) -> FailureEventException:
    error = StatesErrorNameType.StatesStatesDataLimitExceeded
    details_type = TaskFailedEventDetails if details_key == "taskFailedEventDetails" else ExecutionFailedEventDetails
    event_details: Any = {details_key: details_type(error=error.to_name(), cause=cause, **details)}
    return FailureEventException(
        failure_event=FailureEvent(env=env, error_name=StatesErrorName(typ=error), event_type=event_type, event_details=event_details)
    )


# -- Step Functions: payload sizes -------------------------------------------------------------------


def _sfn_size_quota_as_aws_measures() -> None:
    # moto checks a state's output and a task's result with is_within_size_quota, imported by name
    # into each module that uses it: replace it everywhere.
    for module in (quotas, state_module, state_task_service, state_task_lambda):
        module.is_within_size_quota = within_state_quota  # type: ignore[attr-defined]


def _sfn_execution_input() -> None:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: StepFunctionsParserBackend, state_machine_arn: str, name: Any = None, execution_input: Any = None, trace_header: Any = None
    ) -> Any:
        # The API model constrains the request member itself (the string as sent, in UTF-8 bytes):
        # AWS's request validation refuses it with ValidationException before anything runs. The
        # value is not echoed: the member is sensitive. (InvalidExecutionInput is for input that is
        # not JSON.)
        if execution_input is not None and len(str(execution_input).encode("utf-8", "surrogatepass")) > STATE_PAYLOAD_BYTES:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {STATE_PAYLOAD_BYTES}"
            )
        return original(self, state_machine_arn, name, execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def _sfn_state_input() -> None:
    original = state_module.CommonStateField._eval_body

    def _eval_body(self: Any, env: Environment) -> None:
        # The quota covers "input data when ... entering a state" (StateEnteredEventDetails.input:
        # maximum length 262144). Previous outputs are checked already, so this is reached by inputs
        # made on the way, e.g. by a Map's ItemSelector. Raised before the state is entered, so its
        # own Catch does not apply. The cause's wording is ours: AWS documents none.
        if not within_state_quota(env.states.get_input()):
            raise _data_limit_failure(
                env,
                f"The state '{self.name}' was given an input with a size exceeding the maximum number of bytes service limit.",
                HistoryEventType.ExecutionFailed,
                "executionFailedEventDetails",
            )
        original(self, env)

    state_module.CommonStateField._eval_body = _eval_body  # type: ignore[method-assign]


def _sfn_task_parameters() -> None:
    original = state_task_service.StateTaskService._before_eval_execution

    def _before_eval_execution(
        self: Any, env: Environment, resource_runtime_part: Any, raw_parameters: Any, state_credentials: Any
    ) -> None:
        # The quota covers "input data when scheduling a task": the parameters as they would be
        # scheduled (TaskScheduledEventDetails.parameters: maximum length 262144). A TaskFailed like
        # any task failure, so Retry and Catch see it; nothing is scheduled, the resource never
        # called. The cause's wording is ours: AWS documents none.
        if not within_state_quota(raw_parameters):
            raise _data_limit_failure(
                env,
                f"The state/task '{self._get_sfn_resource_type()}' was scheduled with parameters with a size exceeding "
                "the maximum number of bytes service limit.",
                HistoryEventType.TaskFailed,
                "taskFailedEventDetails",
                resource=self._get_sfn_resource(),
                resourceType=self._get_sfn_resource_type(),
            )
        original(self, env, resource_runtime_part, raw_parameters, state_credentials)

    state_task_service.StateTaskService._before_eval_execution = _before_eval_execution  # type: ignore[method-assign]


def _states_all_does_not_catch_data_limit() -> None:
    original = error_equals_decl.ErrorEqualsDecl._eval_body
    data_limit = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)

    def _eval_body(self: Any, env: Environment) -> None:
        # AWS (concepts-error-handling): "States.ALL ... can't catch the States.DataLimitExceeded
        # terminal error"; an ErrorEquals naming it does.
        if env.stack and env.stack[-1] == data_limit:
            env.stack.pop()
            env.stack.append(data_limit in self.error_names)
            return
        original(self, env)

    error_equals_decl.ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]


def _map_iterations_keep_states_errors() -> None:
    # A Map iteration that fails re-raises its error by name as a custom error, and moto refuses a
    # custom name beginning with "States." (ValueError): any States.* error of an iteration, e.g.
    # States.DataLimitExceeded, would end the execution as States.Runtime instead.
    def error_name(error_name: str) -> Any:
        if str(error_name).startswith("States."):
            with contextlib.suppress(ValueError):
                return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name=error_name)

    iteration_worker.CustomErrorName = error_name  # type: ignore[attr-defined,assignment]


# -- Step Functions: the lambda:invoke task result ----------------------------------------------------


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _trace_id() -> str:
    # The longest form Lambda sends (root, parent and lineage).
    return (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0;Lineage=2:{secrets.token_hex(4)}:0"
    )


def lambda_task_result(response: dict[str, Any]) -> dict[str, Any]:
    """What AWS's ``arn:aws:states:::lambda:invoke`` returns for a Lambda Invoke response: the SDK's
    view of it, with every HTTP response header twice (``AllHttpHeaders`` as lists, in the order
    Lambda sends them, and ``HttpHeaders``, case-insensitively sorted), as AWS's results show."""
    metadata = response.get("ResponseMetadata") or {}
    received = {str(k).lower(): str(v) for k, v in (metadata.get("HTTPHeaders") or {}).items()}
    # Lambda's request ids are UUIDs; moto's are 52 random letters.
    request_id = received.get("x-amzn-requestid") or metadata.get("RequestId") or ""
    if not _UUID.fullmatch(request_id):
        request_id = str(uuid.uuid4())
    version = response.get("ExecutedVersion") or received.get("x-amz-executed-version") or "$LATEST"
    status = int(response.get("StatusCode") or 200)
    headers = [
        ("X-Amz-Executed-Version", version),
        ("x-amzn-Remapped-Content-Length", "0"),
        ("Connection", "keep-alive"),
        ("x-amzn-RequestId", request_id),
        ("Content-Length", received.get("content-length") or "0"),
        ("Date", received.get("date") or email.utils.formatdate(usegmt=True)),
        ("X-Amzn-Trace-Id", _trace_id()),
        ("Content-Type", "application/json"),
    ]
    if "x-amz-function-error" in received:
        headers.insert(1, ("X-Amz-Function-Error", received["x-amz-function-error"]))
    result: dict[str, Any] = {"ExecutedVersion": version}
    if response.get("LogResult"):
        result["LogResult"] = response["LogResult"]
    result["Payload"] = response.get("Payload")
    result["SdkHttpMetadata"] = {
        "AllHttpHeaders": {name: [value] for name, value in headers},
        "HttpHeaders": dict(sorted(headers, key=lambda header: header[0].lower())),
        "HttpStatusCode": status,
    }
    result["SdkResponseMetadata"] = {"RequestId": request_id}
    result["StatusCode"] = status
    return result


def _sfn_lambda_task_result_shape() -> None:
    original = StateTaskServiceLambda._eval_service_task

    def _eval_service_task(
        self: Any, env: Environment, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        if env.is_mocked_mode():
            original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        # As moto's execute_lambda_function_integration, but keeping the response metadata it drops.
        response = lambda_eval_utils._invoke_lambda_function(
            parameters=normalised_parameters, region=resource_runtime_part.region, state_credentials=state_credentials
        )
        function_error = response.get("FunctionError")
        if function_error:
            payload = json.dumps(response["Payload"], separators=(",", ":"))
            raise lambda_eval_utils.LambdaFunctionErrorException(function_error, payload)
        env.stack.append(lambda_task_result(response))

    StateTaskServiceLambda._eval_service_task = _eval_service_task  # type: ignore[method-assign]


# -- Step Functions: the execution history ------------------------------------------------------------

_TERMINAL_EVENTS = {
    HistoryEventType.ExecutionSucceeded,
    HistoryEventType.ExecutionFailed,
    HistoryEventType.ExecutionAborted,
    HistoryEventType.ExecutionTimedOut,
}


@dataclass
class _History:
    """What the history limit needs to know of one execution's event manager."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    root: Environment | None = None  # the execution's root environment: stopping it stops every frame
    full: bool = False
    ended: bool = False


_HISTORIES: weakref.WeakKeyDictionary[EventManager, _History] = weakref.WeakKeyDictionary()


def _sfn_history_limit() -> None:
    """AWS ends an execution whose history would pass 25,000 events: event 25,000 is its
    ExecutionFailed. The error and cause are what AWS reports (seen in executions that hit the limit,
    not documented): ``States.Runtime``, "The execution reached the maximum number of history events
    (25000).". An execution whose 25,000th event ends it succeeds."""
    limit_error = ExecutionFailedEventDetails(
        error=StatesErrorNameType.StatesRuntime.to_name(),
        cause=f"The execution reached the maximum number of history events ({EXECUTION_HISTORY_EVENTS}).",
    )
    limit_details: Any = {"executionFailedEventDetails": limit_error}
    add_event = EventManager.add_event

    def add(self: EventManager, context: Any, event_type: Any, event_details: Any = None, timestamp: Any = None,
            update_source_event_id: bool = True) -> int:  # fmt: skip
        history = _HISTORIES.get(self)
        root = history.root if history is not None else None
        if history is None or root is None:  # not an execution's (none such in moto): nothing to limit
            return add_event(self, context, event_type, event_details, timestamp, update_source_event_id)
        with history.lock:
            if not history.full:
                if self._event_id_gen._next_id < EXECUTION_HISTORY_EVENTS or event_type in _TERMINAL_EVENTS:
                    return add_event(self, context, event_type, event_details, timestamp, update_source_event_id)
                history.full = True
            elif event_type == HistoryEventType.ExecutionFailed and not history.ended:
                # The one event recorded past the limit: the failure, with AWS's error and cause.
                history.ended = True
                return add_event(self, context, event_type, limit_details, timestamp, update_source_event_id)
            else:
                return self._event_id_gen._next_id - 1  # dropped: the history is full
        # Stop the execution (every frame follows its root), then abort whatever was recording this
        # event: whoever catches it, the execution is no longer running, and it fails as above.
        root.set_error(limit_error)
        raise FailureEventException(
            failure_event=FailureEvent(
                env=root,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                event_type=HistoryEventType.ExecutionFailed,
                event_details=limit_details,
            )
        )

    env_init, set_error = Environment.__init__, Environment.set_error

    def environment_init(self: Environment, *args: Any, **kwargs: Any) -> None:
        env_init(self, *args, **kwargs)
        # A frame (Map iteration, Parallel branch) is built like a root, then given its root's event
        # manager: the manager keeps the environment it was made with, the root.
        _HISTORIES[self.event_manager] = _History(root=self)

    def environment_set_error(self: Environment, error: Any) -> None:
        # Once the history is full, whatever else goes wrong on the way out, it fails as AWS does.
        history = _HISTORIES.get(self.event_manager)
        set_error(self, limit_error if history is not None and history.full else error)

    EventManager.add_event = add  # type: ignore[method-assign]
    Environment.__init__ = environment_init  # type: ignore[method-assign]
    Environment.set_error = environment_set_error  # type: ignore[method-assign]


def _choice_without_a_match() -> None:
    """A Choice state none of whose rules match, without a Default, fails the execution with
    ``States.NoChoiceMatched`` (AWS); moto raises a bare RuntimeError instead."""

    def eval_state(self: StateChoice, env: Environment) -> None:
        if self.default_state is None and not any(_rule_matches(rule, env) for rule in self.choices_decl.rules):
            error = StatesErrorNameType.StatesNoChoiceMatched
            cause = f"No Choice rule matched and no Default is set in state '{self.name}'."
            details: Any = {"executionFailedEventDetails": ExecutionFailedEventDetails(error=error.to_name(), cause=cause)}
            raise FailureEventException(
                failure_event=FailureEvent(
                    env=env, error_name=StatesErrorName(typ=error), event_type=HistoryEventType.ExecutionFailed, event_details=details
                )
            )
        choice_eval_state(self, env)

    def _rule_matches(rule: Any, env: Environment) -> bool:
        rule.eval(env)
        return env.stack.pop() is True

    choice_eval_state = StateChoice._eval_state
    StateChoice._eval_state = eval_state  # type: ignore[method-assign]


# -- SQS ----------------------------------------------------------------------------------------------

# SQS message quotas (docs: AWSSimpleQueueService/.../quotas-messages.html): "The following Unicode
# characters are allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
# Any characters not included in this list are rejected."
_SQS_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class InvalidMessageContents(SQSException):
    code = "InvalidMessageContents"

    def __init__(self, character: str) -> None:
        # AWS's message, as it answers.
        super().__init__(
            f"Invalid binary character '#x{ord(character):X}' was found in the message body, the set of allowed characters is "
            "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."
        )


def _attribute_value_bytes(key: str, value: Any) -> int:
    if "inary" in key:  # BinaryValue / binary_value arrive base64-encoded: AWS counts the bytes
        try:
            return len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            return len(str(value).encode("utf-8", "surrogatepass"))
    return len(str(value).encode("utf-8", "surrogatepass"))


def _attributes_bytes(attributes: dict[str, Any]) -> int:
    # AWS (sqs-message-metadata): a message attribute's name, type and value all count towards the
    # message size.
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("data_type") or value.get("DataType") or "").encode())
        for key in ("string_value", "StringValue", "binary_value", "BinaryValue"):
            if value.get(key) is not None:
                size += _attribute_value_bytes(key, value[key])
    return size


def message_bytes(body: Any, attributes: dict[str, Any] | None) -> int:
    return len(str(body).encode("utf-8", "surrogatepass")) + _attributes_bytes(attributes or {})


def _check_message(queue: Any, body: Any, attributes: dict[str, Any] | None) -> None:
    forbidden = _SQS_FORBIDDEN.search(str(body))
    if forbidden:
        raise InvalidMessageContents(forbidden.group())
    maximum = int(queue.maximum_message_size)
    if message_bytes(body, attributes) > maximum:
        # AWS's error for a message over the queue's MaximumMessageSize (moto's wording is AWS's).
        raise InvalidParameterValue(f"One or more parameters are invalid. Reason: Message must be shorter than {maximum} bytes.")


def _sqs_messages() -> None:
    send_message, send_message_batch = SQSBackend.send_message, SQSBackend.send_message_batch

    def send(self: SQSBackend, queue_name: str, message_body: str, message_attributes: dict[str, Any] | None = None,
             *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        _check_message(self.get_queue(queue_name), message_body, message_attributes)
        return send_message(self, queue_name, message_body, message_attributes, *args, **kwargs)

    def send_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        total = sum(message_bytes(entry.get("MessageBody", ""), entry.get("MessageAttributes")) for entry in entries.values())
        if total > SQS_BATCH_BYTES:
            raise BatchRequestTooLong(total)
        queue = self.get_queue(queue_name)
        for entry in entries.values():  # every entry before any is sent, as moto does for its own checks
            _check_message(queue, entry.get("MessageBody", ""), entry.get("MessageAttributes"))
        return send_message_batch(self, queue_name, entries)

    SQSBackend.send_message = send  # type: ignore[method-assign]
    SQSBackend.send_message_batch = send_batch  # type: ignore[method-assign]


def _sqs_queues_change_atomically() -> None:
    # A queue's own lock (a Condition over an RLock, which moto's add_message already holds to append
    # a message), held for the whole operation. A long poll waiting inside ReceiveMessage
    # (Queue.wait_for_messages) releases it while it waits: Condition.wait releases an RLock fully.
    receive, change_visibility, delete = SQSBackend.receive_message, SQSBackend.change_message_visibility, Queue.delete_message

    def receive_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return receive(self, queue_name, *args, **kwargs)

    def change_message_visibility(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> None:
        with self.get_queue(queue_name)._messages_lock:
            change_visibility(self, queue_name, *args, **kwargs)

    def delete_message(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:
            delete(self, receipt_handle)

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]


# -- Lambda -------------------------------------------------------------------------------------------


class RequestEntityTooLarge(LambdaClientError):
    # What AWS answers (X-Amzn-ErrorType); the API model calls the shape RequestTooLargeException.
    code = 413

    def __init__(self) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {LAMBDA_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation",
        )


def _lambda_payload_sizes() -> None:
    def invoke(self: LambdaResponse) -> tuple[int, dict[str, str], str | bytes]:
        # moto's LambdaResponse.invoke with AWS's synchronous payload limits in place of its own
        # (sys.getsizeof(payload) > 6,000,000).
        synchronous = self.headers.get("X-Amz-Invocation-Type", "RequestResponse") == "RequestResponse"
        if synchronous and len(self.raw_body or b"") > LAMBDA_SYNC_REQUEST_BYTES:
            raise RequestEntityTooLarge()
        response_headers: dict[str, str] = {}
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        qualifier = self._get_param("qualifier")
        payload = self.backend.invoke(function_name, qualifier, self.body, self.headers, response_headers)
        if payload is None:
            return 404, response_headers, "{}"
        if synchronous and len(payload) > LAMBDA_SYNC_RESPONSE_BYTES:
            error = {
                "errorMessage": f"Response payload size exceeded maximum allowed payload size ({LAMBDA_SYNC_RESPONSE_BYTES} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            payload = json.dumps(error).encode("utf-8")
            response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
        response_headers["content-type"] = "application/json"
        invocation_type = self.headers.get("X-Amz-Invocation-Type")
        if invocation_type == "Event":
            response_headers["status"] = "202"
            return 202, response_headers, payload
        if invocation_type == "DryRun":
            response_headers["status"] = "204"
            return 204, response_headers, payload
        if self.headers.get("X-Amz-Log-Type") != "Tail":
            response_headers.pop("x-amz-log-result", None)
        return 200, response_headers, payload

    LambdaResponse.invoke = amz_crc32(invoke)  # type: ignore[method-assign]


class MappingExists(LambdaClientError):
    code = 409

    def __init__(self, mapping: Any, function_name: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f'An event source mapping with SQS arn (" {mapping.event_source_arn} ") and function (" {function_name} ") '
            f"already exists. Please update or delete the existing mapping with UUID {mapping.uuid}",
        )


def _lambda_one_mapping_per_queue_and_function() -> None:
    # AWS refuses a second mapping of one queue to one function; moto means to (its check looks up
    # the literal key "func.function_arn") and so makes a second, which would poll the queue twice.
    # SQS only: what AWS says of streams is not checked here.
    from moto.awslambda.models import EventSourceMapping, LambdaBackend

    original = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]) -> EventSourceMapping:
        if str(spec.get("EventSourceArn", "")).startswith("arn:aws:sqs:") and spec.get("FunctionName"):
            function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec["FunctionName"])
            for mapping in self._event_source_mappings.values():
                if mapping.event_source_arn == spec["EventSourceArn"] and mapping.function_arn == function.function_arn:
                    raise MappingExists(mapping, function.function_name)
        return original(self, spec)

    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]


def install() -> None:
    _sqs_messages()
    _sqs_queues_change_atomically()
    _sfn_size_quota_as_aws_measures()
    _sfn_execution_input()
    _sfn_state_input()
    _sfn_task_parameters()
    _states_all_does_not_catch_data_limit()
    _map_iterations_keep_states_errors()
    _sfn_lambda_task_result_shape()
    _sfn_history_limit()
    _choice_without_a_match()
    _lambda_payload_sizes()
    _lambda_one_mapping_per_queue_and_function()
