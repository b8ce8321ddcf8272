"""``ValidateStateMachineDefinition`` for the embedded AWS.

The AWS provider calls it while planning ``aws_sfn_state_machine``; moto does not route it, and the
provider then retries for minutes. We answer with real diagnostics, in the shape AWS returns
(``severity``, ``code``, ``message``, ``location``): structural checks that AWS makes (missing
transition targets, states that neither end nor go anywhere, unreachable states) plus the ASL
grammar and static analysis of moto's Step Functions interpreter.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

TERMINAL_TYPES = {"Succeed", "Fail"}


def _diag(code: str, message: str, location: str, severity: str = "ERROR") -> dict[str, str]:
    return {"severity": severity, "code": code, "message": message, "location": location}


def _targets(state: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(json-pointer suffix, target state name) for every transition out of a state."""
    if isinstance(state.get("Next"), str):
        yield "/Next", state["Next"]
    if isinstance(state.get("Default"), str):
        yield "/Default", state["Default"]
    for i, choice in enumerate(state.get("Choices") or []):
        if isinstance(choice, dict) and isinstance(choice.get("Next"), str):
            yield f"/Choices/{i}/Next", choice["Next"]
    for i, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
            yield f"/Catch/{i}/Next", catcher["Next"]


def _check_machine(machine: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(machine, dict):
        return [_diag("SCHEMA_VALIDATION_FAILED", "A state machine must be a JSON object", where or "/")]
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        return [_diag("SCHEMA_VALIDATION_FAILED", "The field 'States' is required and must not be empty", f"{where}/States")]
    diagnostics: list[dict[str, str]] = []
    start = machine.get("StartAt")
    if not isinstance(start, str):
        diagnostics.append(_diag("SCHEMA_VALIDATION_FAILED", "The field 'StartAt' is required", f"{where}/StartAt"))
    elif start not in states:
        diagnostics.append(_diag("MISSING_TRANSITION_TARGET", f"Missing 'StartAt' target: {start}", f"{where}/StartAt"))
    for name, state in states.items():
        loc = f"{where}/States/{name}"
        if not isinstance(state, dict) or not isinstance(state.get("Type"), str):
            diagnostics.append(_diag("SCHEMA_VALIDATION_FAILED", "Every state needs a 'Type'", f"{loc}/Type"))
            continue
        for suffix, target in _targets(state):
            if target not in states:
                diagnostics.append(_diag("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {target}", loc + suffix))
        stype = state["Type"]
        if stype not in TERMINAL_TYPES and stype != "Choice" and not state.get("End") and "Next" not in state:
            diagnostics.append(_diag("SCHEMA_VALIDATION_FAILED", "This state must have a 'Next' field or 'End': true", loc))
        for i, branch in enumerate(state.get("Branches") or []):
            diagnostics.extend(_check_machine(branch, f"{loc}/Branches/{i}"))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                diagnostics.extend(_check_machine(state[key], f"{loc}/{key}"))
    if isinstance(start, str) and start in states:
        reachable, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in reachable or name not in states or not isinstance(states[name], dict):
                continue
            reachable.add(name)
            todo.extend(t for _, t in _targets(states[name]))
        for name in states:
            if name not in reachable:
                diagnostics.append(_diag("UNREACHABLE_STATE", f"State '{name}' is not reachable", f"{where}/States/{name}"))
    return diagnostics


def validate(definition: str, machine_type: str = "STANDARD") -> dict[str, Any]:
    try:
        machine = json.loads(definition)
    except json.JSONDecodeError as exc:
        diagnostics = [_diag("INVALID_JSON_DESCRIPTION", f"Invalid JSON: {exc}", "/")]
    else:
        diagnostics = _check_machine(machine, "")
        if not diagnostics:
            diagnostics = _grammar(definition, machine_type)
    return {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}


def _grammar(definition: str, machine_type: str) -> list[dict[str, str]]:
    """The ASL grammar and static analysis of the interpreter that will run the definition."""
    from moto.stepfunctions.parser.asl.static_analyser.express_static_analyser import ExpressStaticAnalyser
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    analyser = ExpressStaticAnalyser() if machine_type == "EXPRESS" else StaticAnalyser()
    try:
        analyser.analyse(definition)
    except Exception as exc:  # the parser's exceptions carry the offending token and position
        return [_diag("SCHEMA_VALIDATION_FAILED", f"{type(exc).__name__}: {exc}", "/")]
    return []


def install() -> None:
    def validate_state_machine_definition(self: StepFunctionResponse) -> ActionResult:
        return ActionResult(validate(self._get_param("definition"), self._get_param("type") or "STANDARD"))

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition  # type: ignore[attr-defined]
