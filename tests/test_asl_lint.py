"""The rendered state machine definition, linted: cfn-lint's Step Functions checks (E3601, the
definition's schema, as CloudFormation would validate it), and the structure cfn-lint does not
check: every transition names a state, every state is reachable, every path ends, and every error
name a Retry or Catch matches is one that can be raised."""

from __future__ import annotations

import json
from typing import Any

import cfnlint.api
import pytest

from handlers import task_errors, trigger_notifications
from tests.helpers import REFERENCE_RETRY, render_asl

CHECK = "arn:aws:lambda:us-east-1:123456789012:function:coachflow-test-check-rules"
TRIGGER = "arn:aws:lambda:us-east-1:123456789012:function:coachflow-test-trigger-notifications"
# Errors Step Functions and the Lambda integration raise (the documented names), and our handlers'.
KNOWN_ERRORS = {
    "States.ALL", "States.TaskFailed", "States.Timeout", "States.Runtime", "States.DataLimitExceeded",
    "States.NoChoiceMatched", "States.Permissions", "States.HeartbeatTimeout",
    "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
    "Lambda.Unknown", "Sandbox.Timedout",
    *(cls.__name__ for cls in task_errors.TaskError.__subclasses__()),
    trigger_notifications.AllNotificationsFailedException.__name__,
}  # fmt: skip


def _definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(render_asl(CHECK, TRIGGER, REFERENCE_RETRY))
    return definition


def _lint(definition: dict[str, Any]) -> list[str]:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Machine": {"Type": "AWS::StepFunctions::StateMachine", "Metadata": {},
                                  "Properties": {"Definition": definition, "RoleArn": "arn:aws:iam::123456789012:role/sfn"}}},
    }  # fmt: skip
    # I-rules are informational (documentation metadata cfn-lint would like); W and E rules count.
    return [str(m) for m in cfnlint.api.lint_all(json.dumps(template)) if not m.rule.id.startswith("I")]


def _transitions(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [c["Next"] for c in state.get("Choices", [])] + ([state["Default"]] if "Default" in state else [])
    found += [c["Next"] for c in state.get("Catch", [])]
    return found


def structure_problems(definition: dict[str, Any]) -> list[str]:
    states = definition["States"]
    problems = [f"StartAt names no state: {definition['StartAt']}"] if definition["StartAt"] not in states else []
    for name, state in states.items():
        for target in _transitions(state):
            if target not in states:
                problems.append(f"{name} goes to {target}, which is no state")
        ends = state["Type"] in ("Succeed", "Fail") or state.get("End") is True
        if not ends and ("Next" not in state if state["Type"] != "Choice" else not _transitions(state)):
            problems.append(f"{name} neither ends nor goes anywhere")
        for handler in state.get("Retry", []) + state.get("Catch", []):
            problems += [f"{name} handles {e}, which nothing raises" for e in handler["ErrorEquals"] if e not in KNOWN_ERRORS]
        for retrier in state.get("Retry", []):
            for key in ("IntervalSeconds", "MaxAttempts"):
                if key in retrier and not (isinstance(retrier[key], int) and not isinstance(retrier[key], bool)):
                    problems.append(f"{name}: Retry {key} is not an integer: {retrier[key]!r}")
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += _transitions(states[name])
    problems += [f"{name} is unreachable" for name in states if name not in seen]
    return problems


def test_cfn_lint_finds_nothing_in_the_rendered_definition():
    assert _lint(_definition()) == []


def test_the_rendered_definition_is_structurally_sound():
    assert structure_problems(_definition()) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda d: d["States"]["FoundMatchingRules"]["Choices"][0].update(Next="Nowhere"), "FoundMatchingRules goes to Nowhere"),
        (lambda d: d["States"].update(Orphan={"Type": "Pass", "End": True}), "Orphan is unreachable"),
        (
            lambda d: d["States"]["TriggerNotifications"]["Retry"][0].update(ErrorEquals=["AllNotificationFailed"]),
            "AllNotificationFailed, which",
        ),
        (lambda d: d["States"]["TriggerNotifications"]["Retry"][0].update(IntervalSeconds="2"), "IntervalSeconds is not an integer"),
        (lambda d: d["States"]["TriggerNotifications"].pop("Next"), "TriggerNotifications neither ends nor goes anywhere"),
    ],
)
def test_the_structural_check_catches_each_kind_of_breakage(breakage, expected):
    definition = _definition()
    breakage(definition)
    assert any(expected in p for p in structure_problems(definition)), structure_problems(definition)


def test_cfn_lint_catches_a_state_type_it_does_not_know():
    definition = _definition()
    definition["States"]["FoundMatchingRules"]["Type"] = "Chioce"
    assert any("E3601" in m for m in _lint(definition))
