"""The state machine keeps the reference design's contract (asl/coachflow.asl.json): its states,
the Choice on ``trigger_payload_exists``, the retries and the catches. Executions on the embedded
AWS prove the behaviour (tests/test_state_machine.py); this pins the shape, without AWS."""

from __future__ import annotations

import json
import re

from emulator.stack import ROOT
from tests.helpers import REFERENCE_RETRY, render_asl

REFERENCE_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"]
REFERENCE_SETTINGS = {"IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0}


def _definition() -> dict:
    return json.loads(render_asl("arn:check", "arn:trigger"))


def _retrier(state: dict, error: str) -> dict:
    """The retrier Step Functions applies to ``error``: the first that names it."""
    return next(r for r in state["Retry"] if error in r["ErrorEquals"])


def test_the_states_are_the_reference_states():
    asl = _definition()
    states = asl["States"]
    assert asl["StartAt"] == "CheckEventsForRuleMatch"
    assert {name: s["Type"] for name, s in states.items()} == {
        "CheckEventsForRuleMatch": "Task",
        "FoundMatchingRules": "Choice",
        "TriggerNotifications": "Task",
        "Success": "Succeed",
        "Fail": "Fail",
    }
    assert states["CheckEventsForRuleMatch"]["Next"] == "FoundMatchingRules"
    assert states["TriggerNotifications"]["Next"] == "Success"
    choices = {(c["Variable"], c["BooleanEquals"]): c["Next"] for c in states["FoundMatchingRules"]["Choices"]}
    assert choices == {("$.trigger_payload_exists", True): "TriggerNotifications", ("$.trigger_payload_exists", False): "Success"}


def test_both_tasks_retry_the_reference_errors_with_the_reference_settings():
    states = _definition()["States"]
    for name in ("CheckEventsForRuleMatch", "TriggerNotifications"):
        for error in REFERENCE_ERRORS:
            retrier = _retrier(states[name], error)
            assert {k: retrier.get(k) for k in REFERENCE_SETTINGS} == REFERENCE_SETTINGS, (name, error)
    retrier = _retrier(states["TriggerNotifications"], "AllNotificationsFailedException")
    assert {k: retrier.get(k) for k in REFERENCE_SETTINGS} == REFERENCE_SETTINGS


def test_trigger_notifications_catches_its_failures_into_fail():
    states = _definition()["States"]
    (catch,) = states["TriggerNotifications"]["Catch"]
    assert set(catch["ErrorEquals"]) == {"AllNotificationsFailedException", "UnknownException"} and catch["Next"] == "Fail"
    # the Fail state reports the caught error under its own name
    assert states["Fail"]["ErrorPath"] == f"{catch['ResultPath']}.Error"
    # CheckEventsForRuleMatch's input is a batch filled to the payload limit (handlers/limits.py):
    # a Catch adding an error to it would fail with States.DataLimitExceeded instead
    assert "Catch" not in states["CheckEventsForRuleMatch"]


def test_the_reference_settings_are_terraforms_defaults():
    variables = (ROOT / "terraform" / "coachflow" / "variables.tf").read_text()
    block = variables[variables.index('variable "state_machine_retry"') :]
    defaults = dict(re.findall(r"(\w+)\s*=\s*optional\(number,\s*([\d.]+)\)", block[: block.index("validation")]))
    assert {k: float(v) for k, v in defaults.items()} == {k: float(v) for k, v in REFERENCE_RETRY.items()}


def test_every_placeholder_is_filled():
    assert "${" not in render_asl("arn:check", "arn:trigger")
