"""``./build.sh soak [--events N] [--tenants K] [--seed S] [--faults PLAN|none]``: the pipeline under
load and faults on the embedded AWS, reconciled record by record.

1. Builds N raw records (``emulator.workload``: real payloads made new, about 2% hostile) for K
   tenants, each record's expected outcome computed by the pipeline's own pure core.
2. Starts the embedded AWS with a fault plan (``emulator.faults``, default ``DEFAULT_PLAN``),
   applies the local environment, pushes each tenant's rules (the starter pack without thresholds,
   so what must be notified is known in advance: every match of a rule, and for a suppressed rule
   exactly one notification per person) and starts one webhook receiver per tenant, each with a
   fault plan of its own (errors, redirects, a down window; hangs and drips for the receivers that
   deduplicate, since a receiver that answered too slowly cannot tell whether it was heard).
3. Sends everything, with progress, and waits for the pipeline. Then the faults stop, the receivers
   come back healthy, and the sweep is fired until no notification is pending.
4. Redrives the raw-events dead-letter queue with ``./build.sh redrive raw-events-dlq``.
5. Reconciles from the emulator's own records (execution inputs, the dead-letter queue, the
   normalize function's log, the ledger) and the receivers' logs, and prints one table.

Exits 0 only if every record got exactly its one expected outcome, no receiver that does not
deduplicate got a notification twice, every execution is terminal, nothing exceeded a limit, every
expected notification reached its receiver, and nothing is left pending once the faults stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from cli.packs import load_pack, resolve_rule
from emulator import observe
from emulator import report as html_report
from emulator.faults import DEFAULT_PLAN, Plan, read_log
from emulator.scheduler import fire_now
from emulator.stack import EXAMPLES, ROOT, LocalEnvironment, free_port, port_in_use, samples_dir, stop_group
from emulator.webhook_receiver import read_record
from emulator.workload import Workload, build, by_sender, producer
from handlers import tenant_settings
from handlers.ingest import envelope
from handlers.ledger import PARTITION_PREFIX
from handlers.normalize import sqs_batches
from handlers.notify import notification_id
from handlers.rules import ruleset
from handlers.rules.model import Rule
from handlers.rules.state import key_hash, value_at
from handlers.rules.store import RuleStore
from handlers.webhook import TOO_LATE

DEFAULT_EVENTS = 20_000
STARTER_PACK = ROOT / "rules" / "packs" / "starter.yaml"
PROGRESS_EVERY = 5.0


def soak_rules() -> list[Rule]:
    """The starter pack, every rule active, without thresholds (whose crossings depend on the order
    events arrive in); suppression stays: its cool-downs (hours) outlast the run, so each rule must
    notify each person exactly once, however concurrently their events are evaluated."""
    rules = []
    for rule_id, raw in load_pack(STARTER_PACK).items():
        rule = resolve_rule(raw, f"{STARTER_PACK.name}: {rule_id}")
        document = rule.model_dump(exclude={"threshold", "tests"})
        rules.append(Rule.model_validate({**document, "mode": "active", "enabled": True}))
    return rules


def receiver_plan(index: int, seed: int) -> tuple[bool, dict[str, Any]]:
    """(whether the receiver deduplicates, its fault plan). Hangs and drips go only to receivers that
    deduplicate: a receiver that answered after the deliverer gave up has acted, and the retry is
    a duplicate only deduplication makes harmless (docs/guarantees.md)."""
    if index % 3 == 0:
        return False, {"seed": seed + index, "error_share": 0.04, "redirect_share": 0.01, "down": [{"after": 15, "for": 15}]}
    if index % 3 == 1:
        return False, {"seed": seed + index, "error_share": 0.03, "error_status": 503}
    return True, {"seed": seed + index, "error_share": 0.02, "hang_share": 0.005, "hang_seconds": 20,
                  "drip_share": 0.005, "drip_seconds": 8}  # fmt: skip


@dataclass
class Receiver:
    tenant: str
    dedupes: bool
    plan: dict[str, Any]
    port: int
    record: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{self.tenant}"

    def start(self, faulty: bool) -> None:
        command = [sys.executable, "-m", "emulator", "webhook", "--port", str(self.port), "--record", str(self.record)]
        if faulty:
            command += ["--faults-json", json.dumps(self.plan)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if port_in_use(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the webhook receiver of {self.tenant} did not listen on {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process.pid)
            self.process = None


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def row(self, name: str, value: Any) -> None:
        self.rows.append((name, str(value)))

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def print(self) -> None:
        width = max(len(name) for name, _ in self.rows)
        print("\n================ coachflow soak ================")
        for name, value in self.rows:
            print(f"{name:<{width}}  {value}")
        if self.problems:
            print("\nSOAK FAILED:\n  - " + "\n  - ".join(self.problems))
        else:
            print("\nevery record reached exactly its one outcome; every notification arrived, none twice where it mattered.")


@dataclass
class Observed:
    """What the pipeline did, as its own records tell it."""

    statuses: Counter[str] = field(default_factory=Counter)  # executions by status
    failed_errors: Counter[str] = field(default_factory=Counter)  # failed executions by error
    task_failures: Counter[str] = field(default_factory=Counter)  # TaskFailed events (retried or not) by error
    evaluated: Counter[str] = field(default_factory=Counter)  # event uid -> executions whose input carried it
    rejected: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, record index) -> dead letters
    ignored: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, record index) -> log lines
    unprocessed: int = 0  # raw-events messages in the dead-letter queue that no function took
    ledger: Counter[str] = field(default_factory=Counter)  # notifications by status
    ledger_ids: set[str] = field(default_factory=set)
    dead_notifications: int = 0
    acknowledged: dict[str, tuple[bool, Counter[str]]] = field(default_factory=dict)  # tenant -> (dedupes, id -> 2xx answers)
    # notification id -> what its deliverers logged when an attempt did not end in a recorded 2xx
    # (the delivery error, or "unrecorded": delivered, but the ledger write failed)
    not_delivered: dict[str, list[str]] = field(default_factory=dict)
    receiver_faults: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)  # faults the emulator injected, by kind
    redrive: dict[str, Any] = field(default_factory=dict)  # what ./build.sh redrive raw-events-dlq said
    batches_failed: int = 0  # raw-events batches the function failed as a whole: back after the visibility timeout


@dataclass
class Expectation:
    """The notifications the rules must produce, known before anything is sent."""

    exact: set[str] = field(default_factory=set)  # each match of a rule without suppression
    # a suppressed rule notifies once per person: any one of the person's matching events
    candidates: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # notification id -> (tenant, rule, person)

    @property
    def groups(self) -> set[tuple[str, str, str]]:
        return set(self.candidates.values())

    @property
    def count(self) -> int:
        return len(self.exact) + len(self.groups)


def expected_notifications(workload: Workload) -> Expectation:
    """Each tenant's normalized events, matched here against the soak's rules."""
    rules = soak_rules()
    compiled = {t: ruleset.build(t, "soak", rules) for t in workload.tenants}
    expected = Expectation()
    for message in workload.messages:
        for outcome in message.expected:
            if outcome.kind != "normalized" or outcome.event is None or message.tenant is None:
                continue
            for rule_id in compiled[message.tenant].matcher.match(outcome.event):
                nid = notification_id(message.tenant, rule_id, str(outcome.uid))
                suppress = compiled[message.tenant].rules[rule_id].suppress
                if suppress is None:
                    expected.exact.add(nid)
                elif (person := value_at(outcome.event, suppress.key)) is not None:
                    expected.candidates[nid] = (message.tenant, rule_id, key_hash(person))
    return expected


def reconcile(w: Workload, seen: Observed, expected: Expectation) -> Report:
    """One table, and every way the run broke a guarantee."""
    report = Report()
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    lost = conflicting = recorded_twice = 0
    examples: list[str] = []
    sent = {m.message_id for m in w.messages}
    for message in w.messages:
        for index, outcome in enumerate(message.expected):
            key = (str(message.message_id), index)
            counts = {
                "normalized": seen.evaluated.get(str(outcome.uid), 0) if outcome.uid else 0,
                "ignored": seen.ignored.get(key, 0),
                "rejected": seen.rejected.get(key, 0),
            }
            kinds = [kind for kind, n in counts.items() if n]
            if kinds == [outcome.kind]:
                outcomes[outcome.kind] += 1
                if outcome.reason:
                    reasons[f"{outcome.kind} {outcome.reason}"] += 1
                recorded_twice += outcome.kind != "normalized" and counts[outcome.kind] > 1
            elif not kinds:
                lost += 1
                examples.append(
                    f"no outcome for record {index} of message {message.message_id} ({message.template}, expected {outcome.kind})"
                )
            else:
                conflicting += 1
                examples.append(f"record {index} of message {message.message_id}: expected {outcome.kind}, recorded {kinds}")
    strays = [key for key in [*seen.rejected, *seen.ignored] if key[0] not in sent]

    strict = dedupe = late = 0
    received: set[str] = set()
    unexplained: list[str] = []
    for dedupes, counts in seen.acknowledged.values():
        received.update(counts)
        for nid, n in counts.items():
            if n < 2:
                continue
            if dedupes:
                dedupe += n - 1
                continue
            strict += n - 1
            # A receiver that answers after the deliverer's deadline has acted, and the deliverer,
            # which heard nothing, tries again: no deliverer can tell that from a receiver that never
            # got the request (docs/guarantees.md). On two loaded cores a receiver without an injected
            # fault can be that slow. Every other way to deliver twice is a broken promise.
            errors = seen.not_delivered.get(nid, [])
            deadlines = sum(TOO_LATE in error for error in errors)
            if deadlines >= n - 1:
                late += n - 1
            else:
                unexplained.append(f"{nid} acknowledged {n} times; its deliverers logged {errors or 'no failed attempt'}")
    missing = expected.exact - received
    fired = Counter(expected.candidates[nid] for nid in received if nid in expected.candidates)
    never = expected.groups - set(fired)  # a person a suppressed rule never coached
    repeated = {group: n for group, n in fired.items() if n > 1}  # suppression let a second one through
    unexpected = received - expected.exact - set(expected.candidates)
    unfinished = seen.ledger.get("pending", 0) + seen.ledger.get("sending", 0)
    limit = seen.task_failures.get("States.DataLimitExceeded", 0) + seen.failed_errors.get("States.DataLimitExceeded", 0)

    report.row("records in", f"{w.records:,} in {len(w.messages):,} messages ({w.hostile_records} hostile), "
                             f"{len(w.tenants)} tenants: {', '.join(w.tenants)}")  # fmt: skip
    report.row("outcomes", ", ".join(f"{kind} {outcomes[kind]:,}" for kind in ("normalized", "ignored", "rejected")))
    for reason, count in sorted(reasons.items()):
        report.row("  " + reason, f"{count:,}")
    report.row("  lost / conflicting", f"{lost} / {conflicting}")
    report.row("  recorded twice (redelivered)", recorded_twice)
    report.row("  evaluated more than once", sum(1 for n in seen.evaluated.values() if n > 1))
    report.row("  batches failed whole (retried)", seen.batches_failed)
    report.row("executions", ", ".join(f"{k} {v:,}" for k, v in sorted(seen.statuses.items())) or "none")
    if seen.failed_errors:
        report.row("  failed, by error", ", ".join(f"{k} {v}" for k, v in sorted(seen.failed_errors.items())))
    report.row("  task failures (retried or caught)", ", ".join(f"{k} {v}" for k, v in sorted(seen.task_failures.items())) or "none")
    report.row("States.DataLimitExceeded", limit)
    report.row("faults injected (AWS)", ", ".join(f"{k} {v}" for k, v in sorted(seen.injected.items())) or "none")
    report.row("faults injected (receivers)", ", ".join(f"{k} {v}" for k, v in sorted(seen.receiver_faults.items())) or "none")
    report.row("notifications expected", f"{expected.count:,} ({len(expected.exact):,} matches, "
                                         f"{len(expected.groups):,} people coached once by suppressed rules)")  # fmt: skip
    report.row("  delivered (ledger)", f"{seen.ledger.get('delivered', 0):,}")
    report.row("  acknowledged by receivers", f"{len(received):,} (missing {len(missing) + len(never)}, suppression broken {len(repeated)}, "
                                              f"unexpected {len(unexpected)})")  # fmt: skip
    report.row("  delivered twice", f"{strict} at receivers that do not deduplicate ({late} after the receiver answered later than "
                                    f"the deliverer's deadline), {dedupe} at receivers that do")  # fmt: skip
    logged = [error for errors in seen.not_delivered.values() for error in errors]
    report.row(
        "  attempts that failed (deliverers' logs)", f"{len(logged):,} ({sum(TOO_LATE in e for e in logged)} cut short by the deadline)"
    )
    report.row("  pending / dead-lettered", f"{unfinished} / {seen.ledger.get('dead_lettered', 0)} "
                                            f"(dead-notifications queue {seen.dead_notifications})")  # fmt: skip
    report.row("raw-events DLQ", f"{seen.redrive.get('depth_before', '?')} before the redrive, {seen.redrive.get('depth_after', '?')} after "
                                 f"(replayed {seen.redrive.get('replayed', '?')}; rejected records stay)")  # fmt: skip

    report.check(lost == 0 and conflicting == 0,
                 f"{lost} records without an outcome, {conflicting} with another outcome than expected: " + "; ".join(examples[:5]))  # fmt: skip
    report.check(not strays, f"{len(strays)} outcomes recorded for records never sent, e.g. {strays[:3]}")
    report.check(seen.unprocessed == 0, f"{seen.unprocessed} raw-events messages still dead-lettered, unprocessed, after the redrive")
    report.check(seen.redrive.get("exit") == 0, f"the redrive failed: {seen.redrive}")
    report.check(not unexplained, f"{len(unexplained)} notifications delivered twice to receivers that do not deduplicate, "
                                  f"not after a late answer: " + "; ".join(unexplained[:5]))  # fmt: skip
    report.check(seen.statuses.get("RUNNING", 0) == 0, f"{seen.statuses.get('RUNNING', 0)} executions still running")
    lost_runs = {k: v for k, v in seen.failed_errors.items() if k != "AllNotificationsFailedException"}
    report.check(not lost_runs, f"executions failed with {lost_runs}: their evaluation was lost")
    report.check(limit == 0, f"{limit} payloads exceeded Step Functions' limit")
    report.check(not missing and not never, f"{len(missing) + len(never)} expected notifications never acknowledged by their receiver, "
                                            f"e.g. {sorted(missing)[:2]} {sorted(never)[:2]}")  # fmt: skip
    report.check(not repeated, f"{len(repeated)} people coached more than once by a suppressed rule, e.g. {sorted(repeated.items())[:2]}")
    report.check(
        not unexpected, f"{len(unexpected)} notifications acknowledged that no rule should have sent, e.g. {sorted(unexpected)[:3]}"
    )
    report.check(seen.ledger_ids == received,
                 f"the ledger holds {len(seen.ledger_ids - received)} notifications no receiver acknowledged and misses {len(received - seen.ledger_ids)}")  # fmt: skip
    report.check(unfinished == 0 and seen.ledger.get("dead_lettered", 0) == 0 and seen.dead_notifications == 0,
                 f"{unfinished} notifications pending and {seen.ledger.get('dead_lettered', 0)} dead-lettered once the faults stopped")  # fmt: skip
    return report


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.time()
        self.env = LocalEnvironment(name=f"soak-{uuid.uuid4().hex[:8]}")
        self.env.fault_plan = self.env.workdir / "faults.json"
        self.receivers: list[Receiver] = []
        self.workload = Workload()
        self.out: dict[str, Any] = {}
        self.redrive: dict[str, Any] = {}
        self.phases: dict[str, float] = {}
        self.plan = load_plan(args.faults)

    def say(self, text: str) -> None:
        print(f"[{time.time() - self.started:6.0f}s] {text}", flush=True)

    # -- setting up ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        corpus = samples_dir()
        corpus_note = f"and the real-sample corpus ({corpus})" if corpus.is_dir() else "(no real-sample corpus: examples only)"
        self.workload = build(self.args.events, self.args.tenants, self.args.seed, EXAMPLES, corpus if corpus.is_dir() else None)
        w = self.workload
        self.say(f"workload: {w.records:,} records in {len(w.messages):,} messages from the examples {corpus_note}; "
                 f"{w.hostile_records} hostile; tenants {', '.join(w.tenants)}")  # fmt: skip
        self.say(f"starting the embedded AWS on {self.env.endpoint} and applying terraform/environments/local")
        self.env.start()
        self.out = self.env.apply()
        self.say("applied")
        table = self.env.resource("dynamodb").Table(self.out["rules_table"])
        secrets = self.env.client("secretsmanager")
        rules = soak_rules()
        for index, tenant in enumerate(w.tenants):
            dedupes, plan = receiver_plan(index, self.args.seed)
            receiver = Receiver(tenant, dedupes, plan, free_port(), self.env.workdir / f"received-{tenant}.jsonl")
            self.receivers.append(receiver)
            RuleStore(table).push(tenant, rules, webhook_url=receiver.url)
            tenant_settings.update(table, tenant, producers=[producer(tenant)])
            secrets.create_secret(Name=f"{self.out['webhook_secret_prefix']}{tenant}", SecretString=uuid.uuid4().hex)

    def faults(self, on: bool) -> None:
        plan = self.plan if on else {}
        assert self.env.fault_plan is not None
        self.env.fault_plan.write_text(json.dumps(plan))
        for receiver in self.receivers:
            receiver.stop()
            receiver.start(faulty=on)
        time.sleep(0.5)  # the emulator reads its plan four times a second

    # -- running ------------------------------------------------------------------------------------

    def send(self) -> None:
        queue = self.out["raw_events_queue_url"]
        sent = 0
        last = time.time()
        for sender, messages in by_sender(self.workload.messages):
            sqs = self.env.session().client("sqs", endpoint_url=self.env.endpoint, aws_access_key_id=sender,
                                            aws_secret_access_key="soak")  # fmt: skip
            entries = [{"Id": str(n), "MessageBody": m.body, "MessageAttributes": envelope(m.tenant, m.source)}
                       for n, m in enumerate(messages)]  # fmt: skip
            for chunk in sqs_batches(entries):
                pending = {e["Id"]: e for e in chunk}
                while pending:
                    response = sqs.send_message_batch(QueueUrl=queue, Entries=list(pending.values()))
                    for ok in response.get("Successful", []):
                        messages[int(ok["Id"])].message_id = ok["MessageId"]
                        pending.pop(ok["Id"])
                    if response.get("Failed"):
                        time.sleep(0.2)
                sent += len(chunk)
                if time.time() - last > PROGRESS_EVERY:
                    last = time.time()
                    self.progress(f"sent {sent:,}/{len(self.workload.messages):,} messages")
        self.say(f"sent {sent:,} messages")

    def progress(self, prefix: str = "") -> tuple[int, int]:
        depth = self.depth(self.out["raw_events_queue_url"])
        statuses = Counter(e["status"] for e in self.executions())
        received = sum(len(read_record(r.record)) for r in self.receivers)
        parts = [prefix] if prefix else []
        parts += [f"raw queue {depth:,}", f"executions {sum(statuses.values()):,} (running {statuses.get('RUNNING', 0)})",
                  f"webhook requests {received:,}"]  # fmt: skip
        self.say(" | ".join(parts))
        return depth, statuses.get("RUNNING", 0)

    def settle(self, what: str, timeout: float) -> None:
        """Wait until the raw-events queue is empty and no execution runs."""
        deadline = time.time() + timeout
        quiet = 0
        while time.time() < deadline:
            depth, running = self.progress(what)
            quiet = quiet + 1 if depth == 0 and running == 0 else 0
            if quiet >= 2:  # twice in a row: a batch between the poller's receive and its StartExecution is not missed
                return
            time.sleep(PROGRESS_EVERY)
        raise TimeoutError(f"the pipeline did not settle within {timeout:.0f}s ({what})")

    def drain(self, timeout: float) -> None:
        """Fire the sweep until no notification is unfinished (pending, or held by a deliverer)."""
        deadline = time.time() + timeout
        sweep = self.out["sweep_schedule"]
        while time.time() < deadline:
            unfinished = self.ledger_unfinished()
            running = sum(e["status"] == "RUNNING" for e in self.executions())
            self.say(f"draining: {unfinished} notifications unfinished, {running} executions running")
            if unfinished == 0 and running == 0:
                return
            if running == 0:
                fire_now(self.env.endpoint, sweep["name"], sweep["group"])
            time.sleep(PROGRESS_EVERY)
        raise TimeoutError(f"notifications still unfinished after {timeout:.0f}s of draining")

    def redrive_dead_letters(self) -> None:
        command = [sys.executable, "-m", "cli", "redrive", "raw-events-dlq", "--endpoint", self.env.endpoint,
                   "--queue-url", self.out["raw_events_dlq_url"], "--function", self.out["function_names"]["normalize"]]  # fmt: skip
        credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **credentials})
        self.say(f"./build.sh redrive raw-events-dlq: exit {result.returncode} {result.stdout.strip()} {result.stderr.strip()[-500:]}")
        self.redrive = {"exit": result.returncode, **(json.loads(result.stdout) if result.stdout.strip().startswith("{") else {})}

    # -- the emulator's own records -----------------------------------------------------------------

    def depth(self, url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.env.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[n]) for n in names)

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.env.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=self.out["state_machine_arn"]):
            found.extend(page["executions"])
        return found

    def ledger(self) -> list[dict[str, Any]]:
        table = self.env.resource("dynamodb").Table(self.out["state_table"])
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"FilterExpression": "begins_with(pk, :p)", "ExpressionAttributeValues": {":p": PARTITION_PREFIX}}
        while True:
            page = table.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def ledger_unfinished(self) -> int:
        return sum(item.get("status") in ("pending", "sending") for item in self.ledger())

    def dead_letters(self) -> list[dict[str, Any]]:
        sqs = self.env.client("sqs")
        letters: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.out["raw_events_dlq_url"], MaxNumberOfMessages=10, VisibilityTimeout=300,
                                      MessageAttributeNames=["All"]).get("Messages", [])  # fmt: skip
            if not got:
                return letters
            letters.extend(got)

    def logged(self, function: str, *messages: str) -> Iterator[dict[str, Any]]:
        """The JSON log lines of one of the stack's functions whose message is one of ``messages``."""
        logs = self.env.client("logs")
        group = f"/aws/lambda/{self.out['function_names'][function]}"
        quoted = [json.dumps(message) for message in messages]  # a cheap look before parsing the line
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for event in page["events"]:
                if any(q in event["message"] for q in quoted) and (line := json.loads(event["message"]))["message"] in messages:
                    yield line

    def ignored_in_logs(self) -> Counter[tuple[str, int]]:
        return Counter((line["message_id"], int(line["record_index"])) for line in self.logged("normalize", "record ignored"))

    def not_delivered_in_logs(self) -> dict[str, list[str]]:
        """What the deliverers logged of each attempt that did not end in a recorded 2xx: its error,
        or "unrecorded" (delivered, but the ledger could not record it)."""
        found: dict[str, list[str]] = {}
        unrecorded = "delivered, but the ledger could not record it"
        for line in self.logged("trigger_notifications", "notification not delivered", unrecorded):
            error = "unrecorded" if line["message"] == unrecorded else str(line.get("error"))
            found.setdefault(str(line["notification_id"]), []).append(error)
        return found

    # -- what happened, from the emulator's own records and the receivers' logs ------------------------

    def observe(self) -> Observed:
        seen = Observed()
        sfn = self.env.client("stepfunctions")
        for execution in self.executions():
            detail = sfn.describe_execution(executionArn=execution["executionArn"])
            seen.statuses[detail["status"]] += 1
            if detail["status"] == "FAILED":
                seen.failed_errors[detail.get("error", "?")] += 1
            for event in json.loads(detail.get("input") or "{}").get("events") or []:
                seen.evaluated[str(event.get("uid") or (event.get("claim_check") or {}).get("uid"))] += 1
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"]):
                for item in page["events"]:
                    if item["type"] == "TaskFailed":
                        seen.task_failures[item["taskFailedEventDetails"].get("error", "?")] += 1
        for letter in self.dead_letters():
            attributes = letter.get("MessageAttributes") or {}
            if "rejection_reason" not in attributes:
                seen.unprocessed += 1
                continue
            seen.rejected[(attributes["original_message_id"]["StringValue"], int(attributes["record_index"]["StringValue"]))] += 1
        seen.ignored = self.ignored_in_logs()
        seen.not_delivered = self.not_delivered_in_logs()
        seen.ledger = Counter()
        for item in self.ledger():
            seen.ledger[str(item.get("status"))] += 1
            seen.ledger_ids.add(str(item["sk"]))
        seen.dead_notifications = self.depth(self.out["dead_notifications_queue_url"])
        for receiver in self.receivers:
            counts: Counter[str] = Counter()
            for entry in read_record(receiver.record):
                if entry.get("fault"):
                    seen.receiver_faults[str(entry["fault"])] += 1
                status = entry.get("status")
                if isinstance(status, int) and 200 <= status < 300 and entry.get("answered", True) and entry.get("notification_id"):
                    counts[str(entry["notification_id"])] += 1
            seen.acknowledged[receiver.tenant] = (receiver.dedupes, counts)
        seen.injected = Counter(f"{e['kind']}:{e.get('error') or e.get('action') or ''}".rstrip(":") for e in read_log(self.env.fault_log))
        seen.redrive = self.redrive
        poller_log = (self.env.workdir / "emulator.log").read_text(encoding="utf-8", errors="replace")
        seen.batches_failed = poller_log.count("function error on a batch") + poller_log.count("polling failed")
        return seen

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.prepare()
            self.faults(on=True)
            self.say(f"faults on: {json.dumps(self.plan) if self.plan else 'none'}; receivers: "
                     + ", ".join(f"{r.tenant} ({'deduplicates' if r.dedupes else 'does not deduplicate'}) {json.dumps(r.plan)}"
                                 for r in self.receivers))  # fmt: skip
            first_send = time.time()
            self.send()
            self.phases["sending"] = time.time() - first_send
            self.settle("processing", self.args.timeout)
            settled = time.time()
            self.phases["sending until settled"] = settled - first_send
            self.say("faults off; receivers healthy again")
            self.faults(on=False)
            self.drain(self.args.timeout)
            self.phases["draining"] = time.time() - settled
            redriven = time.time()
            self.redrive_dead_letters()
            self.settle("after the redrive", self.args.timeout)
            self.drain(self.args.timeout)
            self.phases["redrive"] = time.time() - redriven
            observed = self.observe()
            page = html_report.write(observe.Environment.of(self.env), html_report.default_path("soak"))
        except TimeoutError as exc:
            print(f"\nSOAK FAILED: {exc}\nthe run's logs and records: {self.env.workdir}")
            return 1
        finally:
            for receiver in self.receivers:
                receiver.stop()
            self.env.stop()
        report = reconcile(self.workload, observed, expected_notifications(self.workload))
        report.row("wall time", f"{time.time() - self.started:.0f} s; {self.workload.records / max(settled - first_send, 1e-9):,.0f} "
                                "records/s from the first send until settled")  # fmt: skip
        for phase, seconds in self.phases.items():
            report.row(f"  {phase}", f"{seconds:.0f} s")
        report.print()
        print(f"report: {page}")
        if not self.args.keep:
            shutil.rmtree(self.env.workdir, ignore_errors=True)
        else:
            print(f"kept: {self.env.workdir}")
        return 1 if report.problems else 0


def load_plan(faults: str | None) -> dict[str, Any]:
    """The emulator's fault plan: the built-in one, none, or a file's (checked here, so a bad plan
    fails before anything starts, naming what is wrong)."""
    if faults == "none":
        return {}
    if not faults:
        return DEFAULT_PLAN
    path = Path(faults)
    text = path.read_text(encoding="utf-8")
    Plan.parse_text(text, path)
    data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    return dict(data or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh soak", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help=f"raw records to send (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--tenants", type=int, default=3, help="tenants, at least 3 (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="the workload's and the fault plans' seed (default 1)")
    parser.add_argument("--faults", help="a fault plan file (JSON or YAML, emulator.faults), or 'none' (default: the built-in plan)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds each phase may take (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, records) under .coachflow/")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.tenants < 3:
        parser.error("--tenants must be at least 3 (the soak spans tenants to prove they stay apart)")
    if args.faults and args.faults != "none" and not Path(args.faults).is_file():
        parser.error(f"--faults: no such file: {args.faults}")
    try:
        soak = Soak(args)
    except ValueError as exc:
        parser.error(str(exc))
    return soak.run()


if __name__ == "__main__":
    sys.exit(main())
