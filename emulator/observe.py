"""What the pipeline did, read back from a running environment's own records: the one source of
``./build.sh report`` (emulator.report) and ``./build.sh trace`` (emulator.trace).

The records are the ones AWS keeps too, so the same reading works there with the same ids:

- the normalize function's log (JSON lines, Powertools): per batch a ``batch started`` line whose
  ``correlation_id`` is the batch id and whose ``messages`` name each raw message in the batch, when
  SQS received it (``sent_ms``) and the uids of its events; per record not normalized a ``record
  ignored`` / ``record rejected`` line with its tenant, reason and place (message id, record index);
  and the outcome metrics (embedded metric format);
- Step Functions: each execution's input (the batch), output and history (states, retries, errors);
- the CheckEventsForRuleMatch and TriggerNotifications logs, whose lines carry the same
  ``correlation_id`` (the batch id);
- the ledger in the state table: one item per delivery (``pk = notif#<tenant>``, sort key the
  delivery id), its status, attempts, last detail and the match it delivers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator import clients
from emulator.stack import INSTANCE, STATE_ROOT
from handlers.batching import PAYLOAD_CAP
from handlers.ledger import PARTITION_PREFIX

TASK_STATES_EVENT_PREFIXES = ("Task", "LambdaFunction")


class NotRunning(RuntimeError):
    """No environment to read from."""


@dataclass
class Environment:
    """A running embedded AWS (``./build.sh up``, the demo, a soak, a test's stack) and its outputs."""

    endpoint: str
    outputs: dict[str, Any]

    def client(self, service: str) -> Any:
        return clients.client(service, self.endpoint)

    @classmethod
    def find(cls, instance: str | None = None, endpoint: str | None = None, outputs: Path | None = None) -> Environment:
        """The environment of ``./build.sh up`` (``.coachflow/<instance>``), or the one named by an
        endpoint and an outputs file."""
        workdir = STATE_ROOT / (instance or INSTANCE)
        outputs_file = outputs or workdir / "outputs.json"
        if endpoint is None:
            endpoint_file = workdir / "endpoint"
            if not endpoint_file.exists():
                raise NotRunning(f"no local environment is running in {workdir} (./build.sh up, or give --endpoint and --outputs)")
            endpoint = endpoint_file.read_text().strip()
        if not outputs_file.exists():
            raise NotRunning(f"no outputs file {outputs_file}")
        return cls(endpoint, json.loads(outputs_file.read_text()))

    @classmethod
    def of(cls, env: Any) -> Environment:
        """From an ``emulator.stack.LocalEnvironment`` that is running and applied."""
        return cls(env.endpoint, env.outputs)


# -- logs -------------------------------------------------------------------------------------------


def _epoch_ms(stamp: Any, fallback: int) -> int:
    """Powertools' ``timestamp`` (``2026-01-02 03:04:05,678+0000``) in epoch milliseconds."""
    if isinstance(stamp, str):
        try:
            return int(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp() * 1000)
        except ValueError:
            pass
    return fallback


def log_lines(env: Environment, stage: str) -> list[dict[str, Any]]:
    """The JSON lines a function logged (``stage``: normalize, check_events, trigger_notifications ...),
    each with ``ms``: when it was written (epoch ms). Lines that are not JSON (START, END) are left out."""
    name = env.outputs.get("function_names", {}).get(stage)
    if not name:
        return []
    logs = env.client("logs")
    found: list[dict[str, Any]] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{name}"):
            for entry in page["events"]:
                text = entry["message"]
                if not text.startswith("{"):
                    continue
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if isinstance(line, dict):
                    line["ms"] = _epoch_ms(line.get("timestamp"), int(entry.get("timestamp", 0)))
                    found.append(line)
    except logs.exceptions.ResourceNotFoundException:
        return []
    return sorted(found, key=lambda line: line["ms"])


@dataclass
class NormalizeLog:
    """What the normalize function's log says."""

    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # batch id -> its "batch started" line
    records: list[dict[str, Any]] = field(default_factory=list)  # "record ignored" / "record rejected" lines
    metrics: dict[str, int] = field(default_factory=dict)  # RecordsNormalized ... summed over the EMF lines
    errors: list[dict[str, Any]] = field(default_factory=list)  # ERROR lines (could not start, could not dead-letter)

    def received_ms(self, uid: str) -> int | None:
        """When SQS received the (earliest) message that carried an event."""
        times = [
            int(message["sent_ms"])
            for line in self.batches.values()
            for message in (line.get("messages") or {}).values()
            if uid in (message.get("event_uids") or []) and message.get("sent_ms")
        ]
        return min(times) if times else None


def normalize_log(env: Environment) -> NormalizeLog:
    read = NormalizeLog()
    for line in log_lines(env, "normalize"):
        if "_aws" in line:
            for name in ("RecordsNormalized", "RecordsIgnored", "RecordsRejected", "ExecutionsStarted"):
                value = line.get(name)
                if value is not None:
                    read.metrics[name] = read.metrics.get(name, 0) + int(sum(value) if isinstance(value, list) else value)
            continue
        message = line.get("message")
        if message == "batch started" and line.get("correlation_id"):
            read.batches.setdefault(str(line["correlation_id"]), line)  # the first start; a redelivery says "already"
        elif message in ("record ignored", "record rejected"):
            read.records.append(line)
        elif line.get("level") == "ERROR":
            read.errors.append(line)
    return read


# -- executions -------------------------------------------------------------------------------------


def _ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value or 0)


def _state_of(event: dict[str, Any]) -> str | None:
    for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
        if key in event:
            return str(event[key]["name"])
    return None


def _failure(event: dict[str, Any]) -> tuple[str, str] | None:
    for key, details in event.items():
        if key.endswith("FailedEventDetails") or key.endswith("TimedOutEventDetails"):
            return str(details.get("error", "?")), str(details.get("cause", ""))
    return None


def path_of(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The states an execution went through, in order: each ``{name, type, entered_ms, exited_ms,
    attempts, errors: [{error, cause, ms}]}`` (attempts: the task's invocations, retries included)."""
    states: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for event in sorted(history, key=lambda e: (_ms(e["timestamp"]), e.get("id", 0))):
        kind = str(event["type"])
        at = _ms(event["timestamp"])
        if kind.endswith("StateEntered"):
            current = {"name": _state_of(event), "type": kind[: -len("StateEntered")], "entered_ms": at, "exited_ms": None,
                       "attempts": 0, "errors": []}  # fmt: skip
            states.append(current)
        elif kind.endswith("StateExited") and current is not None:
            current["exited_ms"] = at
        elif current is not None and kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            current["attempts"] += 1
        failure = _failure(event)
        if failure is not None and current is not None and not kind.startswith("Execution"):
            current["errors"].append({"error": failure[0], "cause": failure[1][:2000], "ms": at})
    return states


def transitions(states: list[dict[str, Any]], definition: dict[str, Any]) -> list[dict[str, str]]:
    """The edges an execution took: ``{from, to, kind}`` with kind ``next``, ``choice``, ``catch``
    (and ``retry``, a task's self-edge, once per retry)."""
    taken: list[dict[str, str]] = []
    for state in states:
        for _ in range(max(0, state["attempts"] - 1)):
            taken.append({"from": state["name"], "to": state["name"], "kind": "retry"})
    for a, b in zip(states, states[1:]):
        kind = "next"
        spec = definition.get("States", {}).get(a["name"], {})
        if spec.get("Type") == "Choice":
            kind = "choice"
        elif any(c.get("Next") == b["name"] for c in spec.get("Catch", [])) and spec.get("Next") != b["name"]:
            kind = "catch"
        taken.append({"from": a["name"], "to": b["name"], "kind": kind})
    return taken


def state_machine_definition(env: Environment) -> dict[str, Any]:
    described = env.client("stepfunctions").describe_state_machine(stateMachineArn=env.outputs["state_machine_arn"])
    definition: dict[str, Any] = json.loads(described["definition"])
    return definition


def execution_arns(env: Environment) -> list[dict[str, Any]]:
    sfn = env.client("stepfunctions")
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=env.outputs["state_machine_arn"]):
        found.extend(page["executions"])
    return sorted(found, key=lambda e: _ms(e["startDate"]))


def execution(env: Environment, arn: str, definition: dict[str, Any], with_history: bool = True) -> dict[str, Any]:
    """One execution: what it carried (mode, tenant, batch id, event uids, bytes), how it ended, the
    states it went through and the edges it took. Without its history (``with_history=False``: one
    request, not two, and not the larger), ``states`` and ``transitions`` are empty."""
    sfn = env.client("stepfunctions")
    detail = sfn.describe_execution(executionArn=arn)
    history: list[dict[str, Any]] = []
    if with_history:
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            history.extend(page["events"])
    raw_input = detail.get("input") or "{}"
    data = json.loads(raw_input)
    output = json.loads(detail.get("output") or "null")
    uids = [str(e.get("uid") or (e.get("claim_check") or {}).get("uid")) for e in data.get("events") or []]
    states = path_of(history)
    error, cause = detail.get("error"), detail.get("cause")
    if error is None:
        for event in history:
            if event["type"] in ("ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
                error, cause = _failure(event) or (event["type"], "")
    return {
        "name": detail["name"],
        "arn": arn,
        "status": detail["status"],
        "start_ms": _ms(detail.get("startDate")),
        "stop_ms": _ms(detail.get("stopDate")) or None,
        "mode": data.get("mode", "?"),
        "tenant": data.get("tenant_id") or "?",
        "batch_id": data.get("batch_id") or (output.get("batch_id") if isinstance(output, dict) else None),
        "event_uids": uids,
        "input_bytes": len(raw_input.encode("utf-8")),
        "fill": len(raw_input.encode("utf-8")) / PAYLOAD_CAP if data.get("mode") == "events" else None,
        "output": output if isinstance(output, dict) else None,
        "error": error,
        "cause": (cause or "")[:2000] or None,
        "states": states,
        "transitions": transitions(states, definition),
    }


def executions(env: Environment, definition: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """Every execution (the most recent ``limit``), oldest first."""
    listed = execution_arns(env)
    if limit is not None:
        listed = listed[-limit:]
    return [execution(env, e["executionArn"], definition) for e in listed]


# -- the ledger -------------------------------------------------------------------------------------


def ledger(env: Environment, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every delivery in the ledger (one tenant's, or all), each with its notification id, channel,
    rule, event uid, status, attempts and last detail."""
    table = env.client("dynamodb")
    name = env.outputs["state_table"]
    items: list[dict[str, Any]] = []
    if tenant is not None:
        pages: Iterator[dict[str, Any]] = table.get_paginator("query").paginate(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": PARTITION_PREFIX + tenant}}
        )
    else:
        pages = table.get_paginator("scan").paginate(
            TableName=name, FilterExpression="begins_with(pk, :p)", ExpressionAttributeValues={":p": {"S": PARTITION_PREFIX}}
        )
    for page in pages:
        items.extend(page["Items"])
    return [delivery(_plain(item)) for item in items]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, typed in item.items():
        (kind, value), *_ = typed.items()
        plain[key] = int(value) if kind == "N" else value
    return plain


def delivery(item: dict[str, Any]) -> dict[str, Any]:
    try:
        match = json.loads(item.get("match") or "{}")
    except ValueError:
        match = {}
    how = match.get("delivery") or {}
    return {
        "tenant": str(item["pk"])[len(PARTITION_PREFIX) :],
        "delivery_id": item["sk"],
        "notification_id": how.get("notification_id") or match.get("notification_id") or item["sk"],
        "channel": how.get("channel") or "webhook",
        "audience": how.get("audience") or "person",
        "status": item.get("status", "?"),
        "attempts": int(item.get("attempts") or 0),
        "detail": item.get("detail"),
        "finished_ms": int(item["finished_at"]) * 1000 if item.get("finished_at") else None,
        "rule_id": match.get("rule_id"),
        "event_uid": (match.get("event") or {}).get("uid"),
        "user": (match.get("user") or {}).get("email_addr") or (match.get("user") or {}).get("name"),
    }


def delivered_ms(deliveries: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, int]:
    """When each delivered delivery was delivered: the end of the TriggerNotifications run that
    reports it (milliseconds), else the ledger's record of it (seconds)."""
    by_run: dict[str, int] = {}
    for run in runs:
        ids = (run.get("output") or {}).get("notification_ids") or []
        ended = [s["exited_ms"] for s in run["states"] if s["name"] == "TriggerNotifications" and s["exited_ms"]]
        for nid in ids:
            if ended:
                by_run.setdefault(str(nid), ended[-1])
    found = {}
    for d in deliveries:
        if d["status"] == "delivered":
            at = by_run.get(d["delivery_id"]) or d["finished_ms"]
            if at:
                found[d["delivery_id"]] = at
    return found


def add_environment_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose the environment to read (report and trace take the same)."""
    parser.add_argument("--instance", help="the local environment's instance (default: COACHFLOW_INSTANCE, else 'default': ./build.sh up)")
    parser.add_argument("--endpoint", help="the embedded AWS's URL (with --outputs), instead of an instance")
    parser.add_argument("--outputs", help="the environment's outputs.json (with --endpoint)")


def env_from_args(args: argparse.Namespace, prog: str) -> Environment | None:
    """The environment ``add_environment_arguments``' arguments name; None, said on stderr as
    ``prog: why``, when there is none to read."""
    try:
        return Environment.find(args.instance or os.environ.get("COACHFLOW_INSTANCE"), args.endpoint,
                                Path(args.outputs) if args.outputs else None)  # fmt: skip
    except NotRunning as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
