"""``./build.sh trace``: a demo event's whole journey, from any of its ids, on the embedded AWS.

One of the demo's payloads (Okta's account lock, acme's in the demo) is sent for a tenant of this
test as an integration sends it, into the raw-events queue; the pipeline runs as deployed (normalize,
the state machine, TriggerNotifications to a real receiver); then the trace, asked by the raw
message id, must tell the journey in time order, and every other id of the journey must lead to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from emulator import observe, report, trace
from emulator.demo import DEMO_EVENTS
from emulator.stack import EXAMPLES, ROOT
from handlers.ingest import envelope
from tests.helpers import ended_executions, push, read_received, set_secret, wait_for

pytestmark = pytest.mark.integration

LOCK_RULE = {"rule_id": "account-locked", "title": "Your account was locked", "match": {"class_uid": [3001], "activity_id": [9]}}
SAMPLE = next(sample for tenant, source, sample in DEMO_EVENTS if sample == "okta/user_account_lock.json")


def _trace(stack, asked: str, via_build_sh: bool = False) -> subprocess.CompletedProcess[str]:
    where = ["--endpoint", stack.endpoint, "--outputs", str(stack.workdir / "outputs.json")]
    command = ["./build.sh", "trace", asked, *where] if via_build_sh else [sys.executable, "-m", "emulator.trace", asked, *where]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_demo_event_traced_from_its_message_id_shows_its_whole_journey_in_time_order(stack, webhook):
    base, record = webhook
    tenant = f"tr-{uuid.uuid4().hex[:10]}"
    push(stack, tenant, [LOCK_RULE], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "trace-secret")
    sent = stack.client("sqs").send_message(
        QueueUrl=stack.outputs["raw_events_queue_url"], MessageBody=(EXAMPLES / SAMPLE).read_text(encoding="utf-8"),
        MessageAttributes=envelope(tenant, "okta"),
    )  # fmt: skip
    message_id = sent["MessageId"]
    env = observe.Environment.of(stack)
    wait_for(lambda: any(d["tenant"] == tenant and d["status"] == "delivered" for d in observe.ledger(env, tenant)), 180, "the delivery")
    (ended,) = ended_executions(stack, f"{tenant}-", 60)
    run = observe.execution(env, ended["executionArn"], observe.state_machine_definition(env))
    (delivery,) = observe.ledger(env, tenant)
    (received,) = read_received(record)
    assert json.loads(received["body"])["notification_id"] == delivery["notification_id"]

    result = _trace(stack, message_id, via_build_sh=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    journey = [
        f"message {message_id} received by SQS",
        f"message {message_id}: 1 event(s) normalized into batch(es) {run['batch_id']}",
        f"execution {run['name']} started",
        "state CheckEventsForRuleMatch entered",
        f"log check_rules [INFO] correlation_id={run['batch_id']}: batch evaluated",
        "state FoundMatchingRules entered",
        "state TriggerNotifications entered",
        f"log trigger_notifications [INFO] correlation_id={run['batch_id']}: notifications",
        f"delivery {delivery['delivery_id']} on webhook",
        f"execution {run['name']} SUCCEEDED",
    ]
    where = [out.find(step) for step in journey]
    assert all(at >= 0 for at in where), (
        "\n".join(f"{'missing' if at < 0 else 'found  '} {step}" for step, at in zip(journey, where)) + "\n" + out
    )
    assert where == sorted(where), out
    assert f"trace {message_id}: raw message" in out and f"tenant {tenant}" in out
    assert "state CheckEventsForRuleMatch left after" in out and "delivered after 1 attempt(s)" in out

    # every other id of the journey leads to the same execution and delivery
    (uid,) = run["event_uids"]
    for asked, kind in ((uid, "event"), (run["batch_id"], "batch"), (run["name"], "execution (events)"),
                        (delivery["notification_id"], "notification")):  # fmt: skip
        other = _trace(stack, asked)
        assert other.returncode == 0, other.stderr
        assert f"trace {asked}: {kind}" in other.stdout
        assert f"execution {run['name']} SUCCEEDED" in other.stdout and f"delivery {delivery['delivery_id']}" in other.stdout
        assert f"message {message_id} received by SQS" in other.stdout


def test_an_unknown_id_says_so(stack):
    # random: the stack is shared, and another test's items may have any fixed id (all zeros included)
    result = _trace(stack, uuid.uuid4().hex)
    assert result.returncode == 1 and "nothing in this environment is named" in result.stdout


def test_resolving_needs_no_environment():
    """The journey of an event, from records as the environment keeps them."""
    normalize = observe.NormalizeLog(
        batches={"b1": {"ms": 2000, "events": 1, "bytes": 900, "messages": {"m1": {"sent_ms": "1000", "event_uids": ["u1"]}}}},  # fmt: skip
        records=[{"ms": 2000, "message_id": "m1", "record_index": 1, "outcome": "ignored", "reason": "not_event", "tenant_id": "t"}],
    )
    run = {"name": "t-b1", "batch_id": "b1", "mode": "events", "tenant": "t", "event_uids": ["u1"], "status": "SUCCEEDED",
           "start_ms": 2100, "stop_ms": 3000, "error": None, "cause": None, "fill": 0.01, "output": {"notification_ids": ["n1"]},
           "states": [{"name": "TriggerNotifications", "type": "Task", "entered_ms": 2500, "exited_ms": 2900, "attempts": 2,
                       "errors": [{"error": "AllNotificationsFailedException", "cause": "{\"errorMessage\": \"refused\"}", "ms": 2600}]}]}  # fmt: skip
    delivery = {"tenant": "t", "delivery_id": "n1", "notification_id": "n1", "channel": "webhook", "status": "delivered", "attempts": 2,
                "detail": "HTTP 200", "finished_ms": 3000, "rule_id": "r", "event_uid": "u1", "user": "a@example.com"}  # fmt: skip
    for asked in ("m1", "u1", "b1", "t-b1", "n1"):
        journey = trace.resolve(asked, [run], normalize, [delivery])
        assert journey.batches == {"b1"} and journey.executions == [run] and journey.deliveries == [delivery], asked
        trace.build(journey, normalize, {})
        text = trace.render(journey)
        order = ["message m1 received", "record 1 of message m1 (tenant t) ignored: not_event", "execution t-b1 started",
                 "AllNotificationsFailedException: refused", "left after 0.40 s, 2 attempts", "delivery n1 on webhook to a@example.com delivered"]  # fmt: skip
        where = [text.find(step) for step in order]
        assert all(at >= 0 for at in where) and where == sorted(where), text


def test_the_tools_reuse_one_client_per_service_and_endpoint():
    """A trace or report reads every execution; a client made per request (a session reloading the
    service models, ~0.1 s) cost 36 of a 39 s trace over 300 executions. Nothing is sent here: making
    a client connects to nothing."""
    from emulator.stack import LocalEnvironment

    first, again = observe.Environment("http://127.0.0.1:9", {}), observe.Environment("http://127.0.0.1:9", {})
    assert first.client("stepfunctions") is first.client("stepfunctions") is again.client("stepfunctions")
    assert first.client("dynamodb") is not first.client("stepfunctions")
    assert observe.Environment("http://127.0.0.1:8", {}).client("stepfunctions") is not first.client("stepfunctions")
    assert LocalEnvironment(name="never-started", port=9).client("stepfunctions") is first.client("stepfunctions")


@pytest.mark.parametrize("tool", ["trace", "report"])
def test_without_a_running_environment_the_tools_say_so_and_exit_2(tool: str, capsys: pytest.CaptureFixture[str]):
    main = {"trace": trace.main, "report": report.main}[tool]
    assert main([*(["some-id"] if tool == "trace" else []), "--instance", "never-started-instance"]) == 2
    assert capsys.readouterr().err.startswith(f"{tool}: no local environment is running")
