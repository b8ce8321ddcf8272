"""Small API gaps in moto that the AWS provider trips over while applying coachflow.

- SQS: ``RedriveAllowPolicy`` is stored but never returned, so the provider waits forever for the
  attribute it set (``aws_sqs_queue_redrive_allow_policy``); ``RedrivePolicy`` comes back with
  spaces where AWS returns compact JSON, so every plan shows a whitespace-only change.
- Step Functions: ``ListStateMachineVersions`` is not routed; the provider calls it after creating
  a state machine.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.models import Queue
from moto.stepfunctions.responses import StepFunctionResponse


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


def install() -> None:
    _sqs_redrive_allow_policy()
    _sfn_list_state_machine_versions()
