"""Re-evaluation of a tenant's recent events under a new rule set, on the embedded AWS: real
executions of the deployed state machine, the recent-events buffer in the claims bucket, the ledger
and the marker in the state table, notifications over HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from emulator.stack import EXAMPLES
from handlers import recent_events
from handlers.notify import notification_id
from tests.helpers import batch_input, events_from, push, read_received, run_execution, set_secret, states_entered, wait_for

pytestmark = pytest.mark.integration

LOCK = {"rule_id": "account-locked", "title": "Your account was locked", "match": {"class_uid": [3001], "activity_id": [9]}}
SSO = {"rule_id": "sign-in", "title": "You signed in", "match": {"class_uid": [3002], "status_id": [1]}}
# v2: LOCK unchanged, SSO changed (its title), two new rules over the failed sign-ins nothing matched under v1
SSO_V2 = {**SSO, "title": "You signed in (reworded)"}
FAILED = {"rule_id": "failed-sign-in", "title": "A sign-in failed", "match": {"class_uid": [3002], "status_id": [2]}}
FAILED_3 = {
    "rule_id": "three-failed-sign-ins",
    "match": {"class_uid": [3002], "status_id": [2]},
    "threshold": {"count": 3, "window": "10m"},
}


def _tenant() -> str:
    return f"re-{uuid.uuid4().hex[:10]}"


def _events(tenant: str) -> dict[str, list[dict[str, Any]]]:
    okta = EXAMPLES / "okta"
    return {
        "lock": events_from(okta / "user_account_lock.json", tenant),  # 1 event
        "failed": events_from(okta / "logs_api_repeated_sign_in_failures.json", tenant),  # 5, about 80 s apart
        "sso": events_from(okta / "logs_api_push_then_sso.json", tenant),  # 2
    }


def _check_output(execution: dict[str, Any]) -> dict[str, Any]:
    check = next(e for e in execution["history"] if e["type"] == "TaskSucceeded")
    payload: dict[str, Any] = json.loads(check["taskSucceededEventDetails"]["output"])["Payload"]
    return payload


def _ids(tenant: str, rule: str, events: list[dict[str, Any]]) -> set[str]:
    return {notification_id(tenant, rule, e["uid"]) for e in events}


def _received_ids(record: Any, tenant: str) -> list[str]:
    return [r["headers"]["webhook-id"] for r in read_received(record) if r["path"] == f"/hooks/{tenant}"]


def test_a_new_rule_set_notifies_exactly_the_new_matches_of_recent_events_once(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    url = f"{base}/hooks/{tenant}"
    push(stack, tenant, [LOCK, SSO], url)
    set_secret(stack, tenant, "k")
    events = _events(tenant)
    batch = batch_input(tenant, events["lock"] + events["failed"] + events["sso"])
    first = run_execution(stack, batch.payload, name=batch.execution_name)
    assert first["status"] == "SUCCEEDED" and json.loads(first["output"])["delivered"] == 3
    before = _ids(tenant, "account-locked", events["lock"]) | _ids(tenant, "sign-in", events["sso"])
    assert sorted(_received_ids(record, tenant)) == sorted(before)

    # the batch is in the tenant's buffer, under v1
    bucket = stack.outputs["claims_bucket"]
    listed = stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=recent_events.prefix(tenant))["Contents"]
    (entry,) = [recent_events.entry(tenant, o["Key"]) for o in listed]
    assert entry is not None and entry.events == 8

    push(stack, tenant, [LOCK, SSO_V2, FAILED, FAILED_3], url)
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant, "scheduled_time": "2026-12-06T10:00:00Z"})
    assert again["status"] == "SUCCEEDED", again
    assert states_entered(again)[-2:] == ["TriggerNotifications", "Success"]
    check = _check_output(again)
    assert check["reevaluation"]["status"] == "ran" and check["reevaluation"]["events"] == 8 and not check["reevaluation"]["more"]
    # every failed sign-in for the new plain rule; the threshold fires once, on the third failure
    new = _ids(tenant, "failed-sign-in", events["failed"]) | _ids(tenant, "three-failed-sign-ins", events["failed"][2:3])
    assert check["decisions"]["below_threshold"] == 4
    delivered = _received_ids(record, tenant)
    assert sorted(delivered) == sorted(before | new)  # each once: the new matches, and nothing of before again
    out = json.loads(again["output"])
    # the changed rule matched its two events again: the ledger knew them delivered; the unchanged one was not re-run
    assert (out["delivered"], out["duplicates"]) == (6, 2)

    # the same tick again (a schedule delivered twice), a later one, and the sweep's: nothing more
    for scheduled in ("2026-12-06T10:00:00Z", "2026-12-06T11:00:00Z", None):
        payload = {"mode": "reevaluate", "tenant_id": tenant, **({"scheduled_time": scheduled} if scheduled else {})}
        later = run_execution(stack, payload)
        assert later["status"] == "SUCCEEDED"
        assert states_entered(later)[-2:] == ["FoundMatchingRules", "Success"]
        assert _check_output(later)["reevaluation"]["status"] == "up_to_date"
    assert sorted(_received_ids(record, tenant)) == sorted(before | new)


def test_a_batch_after_a_push_makes_the_sweep_re_evaluate_a_tenant_without_a_schedule(stack, webhook):
    from emulator.scheduler import fire_now

    base, record = webhook
    tenant = _tenant()
    url = f"{base}/hooks/{tenant}"
    push(stack, tenant, [LOCK], url)
    set_secret(stack, tenant, "k")
    events = _events(tenant)
    old = batch_input(tenant, events["failed"])  # matches nothing under v1
    assert run_execution(stack, old.payload, name=old.execution_name)["status"] == "SUCCEEDED"
    push(stack, tenant, [LOCK, FAILED], url)
    # the next batch (any) is evaluated under v2, which marks the tenant due for a re-evaluation
    new = batch_input(tenant, events["lock"])
    assert run_execution(stack, new.payload, name=new.execution_name)["status"] == "SUCCEEDED"
    time.sleep(1.1)  # the sweep's tick is a second: this test's tick must not be an earlier sweep's
    sweep = stack.outputs["sweep_schedule"]
    fire_now(stack.endpoint, sweep["name"], sweep["group"])  # invokes the sweep function
    sfn = stack.client("stepfunctions")

    def swept() -> list[dict[str, Any]]:
        runs = sfn.list_executions(stateMachineArn=stack.outputs["state_machine_arn"])["executions"]
        return [e for e in runs if e["name"].startswith(f"sweep-{tenant}-") and e["status"] != "RUNNING"]

    (execution,) = wait_for(swept, timeout=90, what="the sweep's re-evaluation")
    assert execution["status"] == "SUCCEEDED"
    expected = _ids(tenant, "account-locked", events["lock"]) | _ids(tenant, "failed-sign-in", events["failed"])
    assert sorted(_received_ids(record, tenant)) == sorted(expected)
