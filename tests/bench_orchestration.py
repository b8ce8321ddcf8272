"""Orchestration overhead of the embedded AWS: what a 3-step Step Functions execution costs beyond
its handlers' own time (issue 11; the reference design reports 100-900 ms per 3-step execution in
AWS). A bare embedded AWS (no Terraform), a state machine of three ``lambda:invoke`` tasks in a row,
each a function of the image whose handler (``step`` below) measures its own time and appends it to
the payload. Per execution: (ExecutionSucceeded - ExecutionStarted, from the execution's history)
minus the three handlers' own times. The first executions warm the functions' execution
environments up and are not counted.

    python -m tests.bench_orchestration [--executions N] [--work-ms MS]

``bench_orchestration()`` prints the figures in the bench's format and returns them (for
``tests/bench.py`` to wire in).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
import uuid
from typing import Any

STEPS = 3
WARMUP = 3


def step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The handler of each step: optional busy work, then its own time appended to the payload."""
    started = time.perf_counter()
    deadline = started + float(event.get("work_ms", 0)) / 1000
    while time.perf_counter() < deadline:
        pass
    own = (time.perf_counter() - started) * 1000
    return {**event, "own_ms": [*event.get("own_ms", []), own]}


def _definition(function_arns: list[str]) -> dict[str, Any]:
    names = [f"Step{n + 1}" for n in range(len(function_arns))]
    states: dict[str, Any] = {}
    for n, (name, arn) in enumerate(zip(names, function_arns)):
        state: dict[str, Any] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                 "Parameters": {"FunctionName": arn, "Payload.$": "$"}, "OutputPath": "$.Payload"}  # fmt: skip
        if n + 1 < len(names):
            state["Next"] = names[n + 1]
        else:
            state["End"] = True
        states[name] = state
    return {"StartAt": names[0], "States": states}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _run(sfn: Any, machine: str, work_ms: float, timeout: float = 60) -> tuple[float, float]:
    """One execution: (its wall time by its history, its handlers' own time), in ms."""
    arn = sfn.start_execution(stateMachineArn=machine, name=f"bench-{uuid.uuid4().hex}",
                              input=json.dumps({"work_ms": work_ms}))["executionArn"]  # fmt: skip
    deadline = time.time() + timeout
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.time() > deadline:
            raise TimeoutError(f"{arn} still running after {timeout}s")
        time.sleep(0.02)
    if execution["status"] != "SUCCEEDED":
        raise RuntimeError(f"{arn} ended {execution['status']}: {execution.get('error')} {execution.get('cause')}")
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    started = next(e["timestamp"] for e in events if e["type"] == "ExecutionStarted")
    ended = next(e["timestamp"] for e in events if e["type"] == "ExecutionSucceeded")
    own = sum(json.loads(execution["output"])["own_ms"])
    return (ended - started).total_seconds() * 1000, own


def bench_orchestration(executions: int = 30, work_ms: float = 0.0) -> dict[str, float]:
    from emulator.stack import LocalEnvironment
    from tests.helpers import fixture_function

    env = LocalEnvironment(name=f"bench-orchestration-{uuid.uuid4().hex[:8]}")
    env.start()
    try:
        functions = [fixture_function(env, "tests.bench_orchestration.step") for _ in range(STEPS)]
        sfn = env.client("stepfunctions")
        machine = sfn.create_state_machine(name=f"bench-{uuid.uuid4().hex[:8]}", roleArn="arn:aws:iam::123456789012:role/fixture",
                                           definition=json.dumps(_definition(functions)))["stateMachineArn"]  # fmt: skip
        for _ in range(WARMUP):
            _run(sfn, machine, work_ms)
        runs = [_run(sfn, machine, work_ms) for _ in range(executions)]
    finally:
        env.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)
    overhead = [wall - own for wall, own in runs]
    result = {
        "executions": float(executions),
        "overhead_p50_ms": statistics.median(overhead),
        "overhead_p95_ms": _percentile(overhead, 0.95),
        "own_p50_ms": statistics.median(own for _, own in runs),
    }
    print(f"  orchestration overhead per {STEPS}-step execution ({executions} executions, handlers' own time excluded):")
    print(f"    p50 {result['overhead_p50_ms']:.0f} ms, p95 {result['overhead_p95_ms']:.0f} ms "
          f"(reference design in AWS: 100-900 ms; handlers' own time p50 {result['own_p50_ms']:.1f} ms)")  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_orchestration")
    parser.add_argument("--executions", type=int, default=30)
    parser.add_argument("--work-ms", type=float, default=0.0, help="busy work of each handler, in ms (default 0)")
    args = parser.parse_args(argv)
    bench_orchestration(args.executions, args.work_ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
