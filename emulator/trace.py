"""``./build.sh trace ID``: one item's whole journey through the pipeline, in time order.

ID is a raw message id (SQS), an event uid, a batch id, an execution name, a notification id or a
delivery id (``<notification id>-<channel>``). The journey: the raw message (when SQS received it)
and the outcome of each of its records; the batch its events went into; the execution of that batch
and each state with its duration, attempts and errors; the log lines of every stage carrying the
batch's correlation id; the notifications and each of their deliveries.

It reads the environment's own records (``emulator.observe``). In AWS the same journey is one
CloudWatch Logs Insights query over the three functions' log groups by ``correlation_id`` (the
batch id; docs/operations.md).

``python -m emulator.trace ID [--instance NAME | --endpoint URL --outputs FILE]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator import observe
from emulator.report import readable_cause

STAGE_LOGS = ("check_rules", "trigger_notifications")  # the function_names keys of the two tasks
QUIET_LINES = {"batch started"}  # said by the journey itself


@dataclass
class Journey:
    """What belongs to one item's journey."""

    asked: str
    kind: str = ""
    messages: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    batches: set[str] = field(default_factory=set)
    executions: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    steps: list[tuple[int, float, str]] = field(default_factory=list)  # (ms, order among steps of the same ms, text)

    def at(self, ms: int | None, text: str, order: float = 0) -> None:
        self.steps.append((ms or 0, order, text))


def _messages_of(normalize: observe.NormalizeLog) -> dict[str, dict[str, Any]]:
    """message id -> {sent_ms, uids, batches} from the ``batch started`` lines."""
    found: dict[str, dict[str, Any]] = {}
    for batch_id, line in normalize.batches.items():
        for message_id, about in (line.get("messages") or {}).items():
            entry = found.setdefault(message_id, {"sent_ms": int(about.get("sent_ms") or 0), "uids": set(), "batches": set()})
            entry["uids"].update(about.get("event_uids") or [])
            entry["batches"].add(batch_id)
    return found


def resolve(asked: str, runs: list[dict[str, Any]], normalize: observe.NormalizeLog, deliveries: list[dict[str, Any]]) -> Journey:
    """Which messages, events, batches, executions and deliveries the id names or leads to."""
    journey = Journey(asked)
    messages = _messages_of(normalize)
    by_batch = {run["batch_id"]: run for run in runs if run["mode"] == "events" and run["batch_id"]}
    for run in runs:
        if run["name"] == asked and run["batch_id"]:
            journey.kind, journey.batches = f"execution ({run['mode']})", {run["batch_id"]}
            if run["mode"] != "events":
                journey.executions = [run]
    if not journey.kind and (asked in by_batch or asked in normalize.batches):
        journey.kind, journey.batches = "batch", {asked}
    if not journey.kind and (asked in messages or any(line.get("message_id") == asked for line in normalize.records)):
        journey.kind, journey.messages = "raw message", {asked}
        journey.batches = set(messages.get(asked, {}).get("batches", set()))
        journey.uids = set(messages.get(asked, {}).get("uids", set()))
    named = [d for d in deliveries if asked in (d["notification_id"], d["delivery_id"])]
    if not journey.kind and named:
        journey.kind = "notification" if any(d["notification_id"] == asked for d in named) else "delivery"
        journey.deliveries = named
        journey.uids = {d["event_uid"] for d in named if d["event_uid"]}
    if not journey.kind and (any(asked in run["event_uids"] for run in runs) or any(asked in m["uids"] for m in messages.values())):
        journey.kind, journey.uids = "event", {asked}
    if not journey.kind:
        return journey
    if journey.kind in ("event", "notification", "delivery"):
        journey.batches = {run["batch_id"] for run in runs if run["mode"] == "events" and journey.uids & set(run["event_uids"])}
    if journey.kind.startswith("execution") or journey.kind == "batch":
        for batch_id in journey.batches:
            if batch_id in by_batch:
                journey.uids |= set(by_batch[batch_id]["event_uids"])
            for about in (normalize.batches.get(batch_id, {}).get("messages") or {}).values():
                journey.uids |= set(about.get("event_uids") or [])
    if not journey.messages:
        journey.messages = {m for m, about in messages.items() if about["uids"] & journey.uids or about["batches"] & journey.batches}
    if not journey.deliveries:
        journey.deliveries = [d for d in deliveries if d["event_uid"] in journey.uids]
    # the executions that evaluated these batches, and any other run that delivered these deliveries (re-evaluations)
    wanted = {d["delivery_id"] for d in journey.deliveries}
    for run in runs:
        delivered = set((run.get("output") or {}).get("notification_ids") or [])
        if (run["mode"] == "events" and run["batch_id"] in journey.batches) or delivered & wanted:
            if run not in journey.executions:
                journey.executions.append(run)
    return journey


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3] if ms else "?"


def _seconds(start: int | None, stop: int | None) -> str:
    return f"{(stop - start) / 1000:.2f} s" if start and stop else "…"


def build(journey: Journey, normalize: observe.NormalizeLog, stage_logs: dict[str, list[dict[str, Any]]]) -> None:
    """The journey's steps, each at its time."""
    messages = _messages_of(normalize)
    for message_id in sorted(journey.messages):
        about = messages.get(message_id)
        lines = [line for line in normalize.records if line.get("message_id") == message_id]
        tenant = next((str(line.get("tenant_id")) for line in lines if line.get("tenant_id")), None)
        received = about["sent_ms"] if about else None
        if received:
            journey.at(received, f"message {message_id} received by SQS (raw-events queue)", 0)
        normalized = len(about["uids"]) if about else 0
        seen: set[int] = set()
        for line in lines:
            index = int(line.get("record_index") or 0)
            if index in seen:
                continue  # the message was delivered twice: its records logged twice, under the same names
            seen.add(index)
            journey.at(line["ms"], f"normalize: record {index} of message {message_id}{' (tenant ' + tenant + ')' if tenant else ''} "
                                   f"{line.get('outcome')}: {line.get('reason')}: {line.get('detail') or '-'}", 1)  # fmt: skip
        if about:
            # logged once the batch's execution was started: told as of the batch's start
            starts = {run["batch_id"]: run["start_ms"] for run in journey.executions if run["mode"] == "events"}
            journey.at(min(min(normalize.batches[b]["ms"], starts.get(b) or normalize.batches[b]["ms"]) for b in about["batches"]),
                       f"normalize: message {message_id}: {normalized} event(s) normalized into batch(es) {', '.join(sorted(about['batches']))}", 1)  # fmt: skip
    runs_by_batch = {run["batch_id"]: run for run in journey.executions if run["mode"] == "events"}
    for batch_id in sorted(journey.batches):
        started = normalize.batches.get(batch_id)
        run = runs_by_batch.get(batch_id)
        if started is None and run is None:
            continue
        events = started.get("events") if started else len(run["event_uids"]) if run else "?"
        size = f", {started.get('bytes'):,} B" if started and started.get("bytes") else ""
        fill = f" ({run['fill'] * 100:.1f}% of the execution input cap)" if run and run.get("fill") is not None else ""
        when = min(x for x in (started["ms"] if started else None, run["start_ms"] if run else None) if x)
        journey.at(when, f"batch {batch_id} (correlation id) started: {events} event(s){size}{fill}", 2)
    for run in journey.executions:
        what = f"{len(run['event_uids'])} event(s)" if run["mode"] == "events" else f"mode {run['mode']}"
        journey.at(run["start_ms"], f"execution {run['name']} started ({run['tenant']}, {what})", 3)
        for n, state in enumerate(run["states"]):
            order = 4 + n / 100  # a state's steps in path order: one leaves before the next is entered, in the same millisecond
            attempts = f", {state['attempts']} attempts" if state["attempts"] > 1 else ""
            journey.at(state["entered_ms"], f"  state {state['name']} entered", order)
            for error in state["errors"]:
                journey.at(error["ms"], f"  state {state['name']}: {error['error']}: {readable_cause(error['cause'])[:300]}", order + 0.001)
            if state["exited_ms"]:
                left = f"  state {state['name']} left after {_seconds(state['entered_ms'], state['exited_ms'])}{attempts}"
                journey.at(state["exited_ms"], left, order + 0.005)
        ended = f"execution {run['name']} {run['status']}"
        if run["stop_ms"]:
            ended += f" after {_seconds(run['start_ms'], run['stop_ms'])}"
        if run["error"]:
            ended += f": {run['error']}: {readable_cause(run['cause'])[:300]}"
        journey.at(run["stop_ms"] or run["start_ms"], ended, 9)
    correlation = {run["batch_id"] for run in journey.executions if run["batch_id"]}
    for stage, lines in stage_logs.items():
        for line in lines:
            if line.get("correlation_id") in correlation and line.get("message") not in QUIET_LINES:
                detail = {k: line[k] for k in ("decisions", "events", "delivered", "failed", "dead_lettered", "notification_id", "error")
                          if line.get(k) not in (None, "", {})}  # fmt: skip
                extra = " " + ", ".join(f"{k}={v}" for k, v in detail.items()) if detail else ""
                journey.at(
                    line["ms"],
                    f"  log {stage} [{line.get('level', '?')}] correlation_id={line['correlation_id']}: {line.get('message')}{extra}",
                    7,
                )
    delivered_at = observe.delivered_ms(journey.deliveries, journey.executions)
    for d in sorted(journey.deliveries, key=lambda d: d["delivery_id"]):
        when = delivered_at.get(d["delivery_id"]) or d["finished_ms"]
        who = f" to {d['user']}" if d["user"] else ""
        text = (f"notification {d['notification_id']} (rule {d['rule_id']}, event {d['event_uid']}): delivery {d['delivery_id']} "
                f"on {d['channel']}{who} {d['status']} after {d['attempts']} attempt(s)")  # fmt: skip
        if d["detail"]:
            text += f": {str(d['detail'])[:200]}"
        journey.at(when, text, 8)


def render(journey: Journey) -> str:
    if not journey.kind:
        return f"trace: nothing in this environment is named {journey.asked!r} (a raw message id, event uid, batch id, execution name, notification or delivery id)"
    tenants = sorted({run["tenant"] for run in journey.executions})
    head = [
        f"trace {journey.asked}: {journey.kind}",
        f"  tenant {', '.join(tenants) or '?'} · correlation id (batch) {', '.join(sorted(journey.batches)) or '-'} · "
        f"executions {', '.join(run['name'] for run in journey.executions) or '-'} · deliveries {len(journey.deliveries)}",
    ]
    ordered = sorted(journey.steps, key=lambda s: (s[0] or float("inf"), s[1]))
    first = next((ms for ms, _, _ in ordered if ms), 0)
    body = [f"{_stamp(ms)}  {('+' + format((ms - first) / 1000, '.3f') + ' s') if ms else '':>11}  {text}" for ms, _, text in ordered]
    return "\n".join(head + body)


def trace(env: observe.Environment, asked: str) -> Journey:
    definition = observe.state_machine_definition(env)
    # Resolving needs what each execution carried, not the states it went through: only the journey's
    # own executions are read with their histories (reading all 300 of an environment's: 4 s, not 1).
    runs = [observe.execution(env, e["executionArn"], definition, with_history=False) for e in observe.execution_arns(env)]
    normalize = observe.normalize_log(env)
    deliveries = observe.ledger(env)
    journey = resolve(asked, runs, normalize, deliveries)
    if journey.kind:
        journey.executions = [observe.execution(env, run["arn"], definition) for run in journey.executions]
        build(journey, normalize, {stage: observe.log_lines(env, stage) for stage in STAGE_LOGS})
    return journey


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh trace", description=__doc__.splitlines()[0])
    parser.add_argument("id", help="a raw message id, event uid, batch id, execution name, notification id or delivery id")
    observe.add_environment_arguments(parser)
    args = parser.parse_args(argv)
    env = observe.env_from_args(args, "trace")
    if env is None:
        return 2
    journey = trace(env, args.id.strip())
    print(render(journey))
    return 0 if journey.kind else 1


if __name__ == "__main__":
    sys.exit(main())
