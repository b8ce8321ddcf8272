"""Small API gaps in moto that the AWS provider trips over while applying coachflow.

- SQS: ``RedriveAllowPolicy`` is stored but never returned, so the provider waits forever for the
  attribute it set (``aws_sqs_queue_redrive_allow_policy``); ``RedrivePolicy`` comes back with
  spaces where AWS returns compact JSON, so every plan shows a whitespace-only change.
- SQS: every message's ``SenderId`` is one fixed id; AWS reports the sending principal's id. Here
  it is the caller's access key id, so producers can be told apart (the tenant trust boundary:
  ``docs/guarantees.md``).
- Step Functions: ``ListStateMachineVersions`` is not routed; the provider calls it after creating
  a state machine.
- Any operation moto does not implement answered with an HTML page and HTTP 500 (which SDKs and
  the AWS CLI retry, then report as an unreadable server error): it now answers as AWS does for an
  operation it refuses, HTTP 400 with the error code ``NotImplemented`` and a message naming the
  service and the operation, in the service's own error format (JSON or XML).
- SES: an email identity's tags are kept under ``...:email-identity/<name>``; its ARN (what the
  provider reads tags by) is ``...:identity/<name>``, so every plan showed its tags as new.
- SES: what was sent is kept in moto's sent-message store, which ``/moto-api/data.json`` would show
  but for a model of another service it cannot serialize here (an HTTP 500): ``GET
  /moto-api/coachflow/ses-sent`` answers the sent messages alone (id, source, destinations,
  subject, body; the HTML part when there is one), for the demo and the tests.
- Scheduler: ``UpdateSchedule`` without ``State`` left the schedule's state empty, so it never fired
  again; AWS applies the default, ``ENABLED``, as ``CreateSchedule`` does here too.
"""

from __future__ import annotations

import html
import json
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs import models as sqs_models
from moto.sqs.models import Message, Queue
from moto.sqs.responses import SQSResponse
from moto.stepfunctions.responses import StepFunctionResponse

from emulator import front_door

_sender = threading.local()  # the access key of the SQS request being served on this thread


def _sqs_redrive_allow_policy() -> None:
    if "RedriveAllowPolicy" in Queue.BASE_ATTRIBUTES:
        return
    Queue.BASE_ATTRIBUTES = [*Queue.BASE_ATTRIBUTES, "RedriveAllowPolicy"]
    Queue.redrive_allow_policy = None  # type: ignore[attr-defined]
    attributes = Queue.attributes

    def with_redrive_allow_policy(self: Queue) -> dict[str, Any]:
        result: dict[str, Any] = attributes.fget(self)  # type: ignore[attr-defined]
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        if result.get("RedriveAllowPolicy") is None:
            result.pop("RedriveAllowPolicy", None)
        return result

    Queue.attributes = property(with_redrive_allow_policy)  # type: ignore[method-assign,assignment]


def _sfn_list_state_machine_versions() -> None:
    def list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(getattr(machine, "versions", {}).items(), reverse=True)
        return ActionResult(
            {"stateMachineVersions": [{"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for _, v in versions]}
        )

    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions  # type: ignore[attr-defined]


def _sqs_sender_id() -> None:
    for action in ("send_message", "send_message_batch"):
        original = getattr(SQSResponse, action)

        def serve(self: SQSResponse, _original: Any = original) -> Any:
            _sender.key = front_door.access_key(str(self.headers.get("Authorization", "")))
            try:
                return _original(self)
            finally:
                _sender.key = None

        setattr(SQSResponse, action, serve)
    created = Message.__init__

    def init(self: Message, *args: Any, **kwargs: Any) -> None:
        created(self, *args, **kwargs)
        self.sender_id = getattr(_sender, "key", None) or sqs_models.DEFAULT_SENDER_ID

    Message.__init__ = init  # type: ignore[method-assign]


def _unimplemented_as_aws_errors() -> None:
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        try:
            return original(self)
        except NotImplementedError as exc:
            operation = self._get_action() or "?"
            service = getattr(self, "service_name", None) or type(self).__name__.removesuffix("Response")
            message = f"The embedded AWS (moto) does not implement {service} {operation}: {exc}"
            headers = dict(self.response_headers)
            wants_json = "X-Amz-Target" in self.headers or "json" in str(self.headers.get("Content-Type", ""))
            if wants_json:
                headers.update({"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "NotImplemented"})
                return 400, headers, json.dumps({"__type": "NotImplemented", "message": message})
            headers["Content-Type"] = "text/xml"
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
                f"<Message>{html.escape(message)}</Message></Error><RequestId>coachflow-embedded</RequestId></ErrorResponse>"
            )
            return 400, headers, body

    BaseResponse.call_action = call_action  # type: ignore[method-assign]


def _ses_identity_arn() -> None:
    from moto.ses import models as ses_models
    from moto.ses import utils as ses_utils
    from moto.sesv2 import models as sesv2_models

    def get_arn(backend: Any, service: str, resource: str) -> str:
        if resource.startswith("email-identity/"):
            resource = "identity/" + resource.removeprefix("email-identity/")
        return ses_utils.get_arn(backend, service, resource)

    ses_models.get_arn = get_arn  # type: ignore[attr-defined]
    sesv2_models.get_arn = get_arn  # type: ignore[attr-defined]


def _ses_sent_messages() -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.moto_api._internal import urls
    from moto.ses.models import ses_backends

    def sent(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
        messages = [
            {"id": m.id, "source": m.source, "destinations": m.destinations, "subject": m.subject, "body": m.body}
            for region, backend in ses_backends[DEFAULT_ACCOUNT_ID].items()
            for m in backend.sent_messages
            if hasattr(m, "subject")  # raw messages have no subject of their own
        ]
        return 200, {"Content-Type": "application/json"}, json.dumps(messages)

    urls.url_paths["{0}/moto-api/coachflow/ses-sent$"] = sent


def _scheduler_update_keeps_the_default_state() -> None:
    from moto.scheduler.models import Schedule

    original = Schedule.update

    def update(self: Schedule, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.state = self.state or "ENABLED"

    Schedule.update = update  # type: ignore[method-assign]


def install() -> None:
    _scheduler_update_keeps_the_default_state()
    _unimplemented_as_aws_errors()
    _ses_identity_arn()
    _ses_sent_messages()
    _sqs_sender_id()
    _sqs_redrive_allow_policy()
    _sfn_list_state_machine_versions()
