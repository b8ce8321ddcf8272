"""EventBridge Scheduler that fires: moto stores schedules but never runs them.

The scheduler thread reads the schedules through the embedded AWS's API, computes their next
occurrence from ``rate(...)``, ``cron(...)`` (AWS's six fields, in the schedule's time zone) or
``at(...)`` expressions, and delivers the target as EventBridge Scheduler does: StartExecution for a
state machine, an asynchronous Invoke for a function, SendMessage for a queue, with the target's
``Input`` after substituting the scheduler's context attributes. ``fire(...)`` fires one schedule
now (``./build.sh fire-schedule NAME``), for tests and the demo.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from croniter import croniter

from emulator.clients import client, session

log = logging.getLogger("emulator.scheduler")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(ValueError):
    pass


def _aws_dow_to_cron(field: str) -> str:
    # AWS numbers days 1-7 from Sunday; croniter 0-6. Names (MON-FRI) mean the same in both.
    return re.sub(r"(?<![#\d])(\d+)", lambda m: str(int(m.group(1)) - 1), field)


def next_occurrence(expression: str, after: dt.datetime, timezone: str = "UTC") -> dt.datetime | None:
    """The first occurrence strictly after ``after`` (an aware datetime), or None if there is none."""
    expression = expression.strip()
    if m := _RATE.match(expression):
        value, unit = int(m.group(1)), m.group(2).rstrip("s")
        if value < 1:
            raise ScheduleExpressionError(f"rate value must be positive: {expression}")
        return after + dt.timedelta(seconds=value * _UNIT_SECONDS[unit])
    if expression.startswith("at(") and expression.endswith(")"):
        when = dt.datetime.fromisoformat(expression[3:-1]).replace(tzinfo=ZoneInfo(timezone))
        return when if when > after else None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6:
            raise ScheduleExpressionError(f"cron needs 6 fields (min hour day month weekday year): {expression}")
        minute, hour, dom, month, dow, year = fields
        if "?" not in (dom, dow):
            raise ScheduleExpressionError(f"one of day-of-month or day-of-week must be '?': {expression}")
        spec = " ".join([minute, hour, dom.replace("?", "*"), month, _aws_dow_to_cron(dow.replace("?", "*"))])
        if not croniter.is_valid(spec):
            raise ScheduleExpressionError(f"invalid cron expression: {expression}")
        tz = ZoneInfo(timezone)
        it = croniter(spec, after.astimezone(tz))
        for _ in range(10000):
            candidate: dt.datetime = it.get_next(dt.datetime)
            if year in ("*", "?") or str(candidate.year) in _expand_years(year):
                return candidate.astimezone(dt.timezone.utc)
        return None
    raise ScheduleExpressionError(f"unsupported schedule expression: {expression}")


def _expand_years(field: str) -> set[str]:
    years: set[str] = set()
    for part in field.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            years.update(str(y) for y in range(int(lo), int(hi) + 1))
        else:
            years.add(part)
    return years


def _render_input(text: str, schedule: dict[str, Any], scheduled: dt.datetime, execution_id: str) -> str:
    context = {
        "<aws.scheduler.schedule-arn>": schedule["Arn"],
        "<aws.scheduler.scheduled-time>": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": "1",
    }
    for key, value in context.items():
        text = text.replace(key, value)
    return text


def fire(session: boto3.session.Session, endpoint_url: str, schedule: dict[str, Any], scheduled: dt.datetime) -> str:
    """Deliver a schedule's target once, as EventBridge Scheduler would. Returns what was started."""
    target = schedule["Target"]
    arn: str = target["Arn"]
    execution_id = str(uuid.uuid4())
    payload = _render_input(target.get("Input") or "{}", schedule, scheduled, execution_id)
    service = arn.split(":")[2]
    client = session.client(service if service != "states" else "stepfunctions", endpoint_url=endpoint_url)
    if service == "states":
        # Scheduler names each execution itself; we name it after the schedule and the tick so that
        # a tick delivered twice starts one execution (StartExecution is idempotent on name+input).
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{schedule['Name']}-{scheduled:%Y%m%dT%H%M%SZ}")[:80]
        return str(client.start_execution(stateMachineArn=arn, name=name, input=payload)["executionArn"])
    if service == "lambda":
        client.invoke(FunctionName=arn, InvocationType="Event", Payload=payload.encode("utf-8"))
        return arn
    if service == "sqs":
        account, name = arn.split(":")[4], arn.split(":")[5]
        url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return str(client.send_message(QueueUrl=url, MessageBody=payload)["MessageId"])
    raise ScheduleExpressionError(f"unsupported schedule target: {arn}")


def fire_now(endpoint_url: str, name: str, group: str = "default") -> str:
    """Fire a schedule at once (``./build.sh fire-schedule``, tests, the demo); returns what it started."""
    schedule = client("scheduler", endpoint_url).get_schedule(Name=name, GroupName=group)
    return fire(session(), endpoint_url, schedule, dt.datetime.now(dt.timezone.utc))


class Scheduler:
    def __init__(self, endpoint_url: str, region: str, tick: float = 1.0) -> None:
        self.endpoint_url = endpoint_url
        self.session = session(region)
        self.tick = tick
        self._stop = threading.Event()
        self._next: dict[str, tuple[str, dt.datetime | None]] = {}
        # Arn -> (its creation and last modification dates, the schedule as last fetched)
        self._schedules: dict[str, tuple[tuple[Any, Any], dict[str, Any]]] = {}

    def start(self) -> None:
        threading.Thread(target=self._run, name="scheduler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        client = self.session.client("scheduler", endpoint_url=self.endpoint_url)
        while not self._stop.wait(self.tick):
            try:
                summaries = [s for page in client.get_paginator("list_schedules").paginate() for s in page["Schedules"]]
            except Exception:
                continue
            now = dt.datetime.now(dt.timezone.utc)
            listed = {s["Arn"] for s in summaries}
            self._schedules = {arn: fetched for arn, fetched in self._schedules.items() if arn in listed}
            for summary in summaries:
                try:
                    self._maybe_fire(client, summary, now)
                except Exception:
                    log.exception("schedule %s could not fire", summary.get("Name"))

    def _maybe_fire(self, client: Any, summary: dict[str, Any], now: dt.datetime) -> None:
        if summary.get("State") != "ENABLED":
            return
        schedule = self._schedule(client, summary)
        expression, tz = schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone") or "UTC"
        known = self._next.get(schedule["Arn"])
        if known is None or known[0] != expression:
            # A one-time schedule counts from its creation, so one seen late still fires once.
            created = schedule.get("CreationDate")
            start = created - dt.timedelta(seconds=1) if expression.startswith("at(") and isinstance(created, dt.datetime) else now
            self._next[schedule["Arn"]] = (expression, next_occurrence(expression, start, tz))
            known = self._next[schedule["Arn"]]
        due = known[1]
        if due is None or due > now:
            return
        fire(self.session, self.endpoint_url, schedule, due)
        self._next[schedule["Arn"]] = (expression, next_occurrence(expression, max(due, now), tz))

    def _schedule(self, client: Any, summary: dict[str, Any]) -> dict[str, Any]:
        """The schedule a summary is of. A summary (as AWS's) lacks the expression and the target; the
        schedule is fetched again when its dates say it changed, not every tick."""
        version = (summary.get("CreationDate"), summary.get("LastModificationDate"))
        fetched = self._schedules.get(summary["Arn"])
        if fetched is None or fetched[0] != version:
            fetched = (version, client.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default")))
            self._schedules[summary["Arn"]] = fetched
        return fetched[1]
