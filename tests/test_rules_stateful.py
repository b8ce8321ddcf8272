"""Thresholds, suppression and shadow mode, proven on the embedded AWS through real executions of the
deployed state machine (state in the DynamoDB state table, notifications over HTTP)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from emulator.stack import EXAMPLES
from handlers.events import iso_utc
from tests.helpers import batch_input, events_from, push, read_received, run_execution, set_secret, states_entered

pytestmark = pytest.mark.integration
T0 = 1_790_000_000_000
MINUTE = 60_000


def _tenant() -> str:
    return f"st-{uuid.uuid4().hex[:10]}"


def _failure(base: dict[str, Any], tenant: str, n: int, at: int, who: str) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event.update(uid=f"{n:032x}", time=at, time_dt=iso_utc(at))
    event["metadata"]["tenant_uid"] = tenant
    event["user"] = {"email_addr": who, "name": who}
    return event


def _evaluate(stack, tenant: str, events: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    execution = run_execution(stack, batch_input(tenant, events).payload)
    assert execution["status"] == "SUCCEEDED", execution
    check = next(e for e in execution["history"] if e["type"] == "TaskSucceeded")
    return execution, json.loads(check["taskSucceededEventDetails"]["output"])["Payload"]["decisions"]


@pytest.fixture
def base_event() -> dict[str, Any]:
    return events_from(EXAMPLES / "okta" / "logs_api_repeated_sign_in_failures.json", "x")[0]


def test_threshold_fires_on_the_nth_event_and_counts_a_redelivered_event_once(stack, webhook, base_event):
    base, record = webhook
    tenant = _tenant()
    rule = {"rule_id": "three-failures", "match": {"class_uid": [3002], "status_id": [2]},
            "threshold": {"count": 3, "window": "10m"}}  # fmt: skip
    push(stack, tenant, [rule], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    e1, e2, e3, e4 = (_failure(base_event, tenant, n, T0 + n * MINUTE, "amy@corp.example") for n in (1, 2, 3, 4))
    other = _failure(base_event, tenant, 9, T0 + 2 * MINUTE, "bob@corp.example")

    _, decisions = _evaluate(stack, tenant, [e1, e2, other])
    assert decisions == {"below_threshold": 3}  # two for amy, one for bob: separate counters

    # e2 again (a redelivery) with e3: e2 is not counted twice, so e3 is the third failure
    execution, decisions = _evaluate(stack, tenant, [e2, e3])
    assert decisions == {"below_threshold": 1, "notify": 1}
    assert states_entered(execution)[-2:] == ["TriggerNotifications", "Success"]
    (received,) = read_received(record)
    assert json.loads(received["body"])["event"]["uid"] == e3["uid"]

    # counting restarts after firing
    _, decisions = _evaluate(stack, tenant, [e4])
    assert decisions == {"below_threshold": 1}

    # re-evaluating the firing event (a retry) gives the same decision, but never a second delivery
    execution, decisions = _evaluate(stack, tenant, [e3])
    assert decisions == {"notify": 1}
    assert json.loads(execution["output"])["duplicates"] == 1
    assert len(read_received(record)) == 1


def test_threshold_window_is_measured_in_event_time(stack, webhook, base_event):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [{"rule_id": "two-in-5m", "match": {"class_uid": [3002]}, "threshold": {"count": 2, "window": "5m"}}],
         f"{base}/hooks/{tenant}")  # fmt: skip
    set_secret(stack, tenant, "k")
    far_apart = [_failure(base_event, tenant, n, T0 + n * 10 * MINUTE, "amy@corp.example") for n in (1, 2)]
    assert _evaluate(stack, tenant, far_apart)[1] == {"below_threshold": 2}
    close = _failure(base_event, tenant, 3, T0 + 2 * 10 * MINUTE + MINUTE, "amy@corp.example")
    assert _evaluate(stack, tenant, [close])[1] == {"notify": 1}


def test_suppression_keeps_quiet_for_the_cool_down(stack, webhook, base_event):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [{"rule_id": "coach-once", "match": {"class_uid": [3002]}, "suppress": {"duration": "1h"}}],
         f"{base}/hooks/{tenant}")  # fmt: skip
    set_secret(stack, tenant, "k")
    amy1, amy2 = (_failure(base_event, tenant, n, T0 + n * MINUTE, "amy@corp.example") for n in (1, 2))
    bob = _failure(base_event, tenant, 3, T0, "bob@corp.example")
    assert _evaluate(stack, tenant, [amy1])[1] == {"notify": 1}
    assert _evaluate(stack, tenant, [amy2, bob])[1] == {"suppressed": 1, "notify": 1}
    assert sorted(json.loads(r["body"])["user"]["email_addr"] for r in read_received(record)) == ["amy@corp.example", "bob@corp.example"]
    # the event that fired is replayable within the quiet period (a retry), and still delivered once
    assert _evaluate(stack, tenant, [amy1])[1] == {"notify": 1}
    assert len(read_received(record)) == 2


def test_shadow_rules_are_evaluated_and_recorded_but_never_notify(stack, webhook, base_event):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [{"rule_id": "trial", "mode": "shadow", "match": {"class_uid": [3002]}}], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    event = _failure(base_event, tenant, 1, T0, "amy@corp.example")
    execution, decisions = _evaluate(stack, tenant, [event])
    assert decisions == {"shadow": 1}
    assert states_entered(execution)[-2:] == ["FoundMatchingRules", "Success"]
    assert read_received(record) == []
    table = stack.resource("dynamodb").Table(stack.outputs["state_table"])
    item = table.get_item(Key={"pk": f"shadow#{tenant}", "sk": f"trial#{event['uid']}"})["Item"]
    assert item["decision"] == "would_notify" and int(item["expires_at"]) > int(item["recorded_at"])


def test_a_new_rule_set_version_is_picked_up_by_warm_lambdas(stack, webhook, base_event):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [{"rule_id": "v1", "match": {"class_uid": [9999]}}], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    assert _evaluate(stack, tenant, [_failure(base_event, tenant, 1, T0, "amy@corp.example")])[1] == {}
    push(stack, tenant, [{"rule_id": "v2", "match": {"class_uid": [3002]}}], f"{base}/hooks/{tenant}")
    assert _evaluate(stack, tenant, [_failure(base_event, tenant, 2, T0, "amy@corp.example")])[1] == {"notify": 1}
