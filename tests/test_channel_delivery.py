"""Every coaching channel on the embedded AWS: real state machine executions, real HTTP receivers on
127.0.0.1 playing Slack's Web API, a Teams workflow, the tenant's webhook and its learning platform,
and email through SES (moto's, read back from its sent-message store)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from emulator.stack import EXAMPLES
from handlers import channels, ledger, tenant_settings
from tests.helpers import (
    batch_input,
    events_from,
    push,
    read_received,
    run_execution,
    set_secret,
    signature_ok,
    start_execution,
    states_entered,
    wait_execution,
)

pytestmark = pytest.mark.integration

RULE = {
    "rule_id": "account-locked",
    "title": "Your account was locked",
    "match": {"class_uid": [3001], "activity_id": [9]},
    "actions": [
        {
            "type": "assign_training",
            "training_id": "password-hygiene-101",
            "template": "Hi {user}, your account {event.message} <b>locked</b>.",
        },
        {"type": "escalate", "escalate_to": "it-lead@acme.example"},
    ],
}


def _tenant() -> str:
    return f"ch-{uuid.uuid4().hex[:10]}"


def _configure(env: Any, tenant: str, base: str, default: list[str], paths: dict[str, str] | None = None) -> None:
    """The tenant's channels and their secrets (Secrets Manager, as operators create them)."""
    paths = {"slack": "slack-api", "teams": "teams", "learning": "learning", **(paths or {})}
    table = env.resource("dynamodb").Table(env.outputs["rules_table"])
    settings = {
        "default": default,
        "email": {"sender": "coaching@acme.example", "recipient_domains": ["acme.example", "example.com"]},
        "slack": {"dm_by_email": True, "api_url": f"{base}/{paths['slack']}/{tenant}"},
        "teams": {},
        "learning": {},
        "templates": {"email": {"subject": "Coaching: {title}", "link": "https://learn.acme.example/{rule}"}},
    }
    tenant_settings.update(table, tenant, channels=channels.parse(settings))
    set_secret(env, tenant, "signing-secret")
    set_secret(env, f"{tenant}/slack", json.dumps({"bot_token": "xoxb-embedded"}))
    set_secret(env, f"{tenant}/teams", json.dumps({"webhook_url": f"{base}/{paths['teams']}/{tenant}/workflow"}))
    set_secret(env, f"{tenant}/learning", json.dumps({"url": f"{base}/{paths['learning']}/{tenant}/assignments", "token": "lms"}))


def _lock_event(tenant: str, email: str = "jo@example.com") -> list[dict[str, Any]]:
    events = events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)
    for event in events:
        event["user"]["email_addr"] = email
    return events


def test_every_channel_delivers_once_with_its_own_message(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [RULE], f"{base}/hooks/{tenant}")
    _configure(stack, tenant, base, ["email", "slack", "teams", "webhook"])
    before = len(stack.sent_emails())
    execution = run_execution(stack, batch_input(tenant, _lock_event(tenant)).payload)
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    # email, slack, teams, webhook to the person; the course on the learning platform; the manager's email
    assert (output["delivered"], output["failed"], output["dead_lettered"]) == (6, 0, 0)

    received = read_received(record)
    paths = sorted(r["path"] for r in received)
    assert paths == sorted([
        f"/slack-api/{tenant}/users.lookupByEmail", f"/slack-api/{tenant}/chat.postMessage",
        f"/teams/{tenant}/workflow", f"/learning/{tenant}/assignments", f"/hooks/{tenant}",
    ])  # fmt: skip
    hook = next(r for r in received if r["path"] == f"/hooks/{tenant}")
    assert signature_ok(hook, "signing-secret")
    body = json.loads(hook["body"])
    assert {a["type"] for a in body["actions"]} == {"assign_training", "escalate"}
    assignment = json.loads(next(r for r in received if r["path"].startswith("/learning/"))["body"])
    assert assignment["course_id"] == "password-hygiene-101" and assignment["user"]["email_addr"] == "jo@example.com"

    emails = stack.sent_emails()[before:]
    person = [m for m in emails if m["destinations"]["ToAddresses"] == ["jo@example.com"]]
    manager = [m for m in emails if m["destinations"]["ToAddresses"] == ["it-lead@acme.example"]]
    assert len(person) == 1 and len(manager) == 1
    assert person[0]["subject"] == "Coaching: Your account was locked" and person[0]["source"] == "coaching@acme.example"
    assert "&lt;b&gt;locked&lt;/b&gt;" in person[0]["body"]  # the template is text: its markup shown, not obeyed
    assert '<a href="https://learn.acme.example/account-locked">' in person[0]["body"]

    # Replayed (the same batch again, as a redelivery would): nothing is sent twice on any channel.
    again = run_execution(stack, batch_input(tenant, _lock_event(tenant)).payload)
    assert json.loads(again["output"])["duplicates"] == 6
    assert len(read_received(record)) == len(received) and len(stack.sent_emails()) == before + 2


def test_a_channel_answering_500_then_200_gets_one_message_and_the_others_are_not_resent(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [RULE | {"actions": [{"type": "notify"}]}], f"{base}/hooks/{tenant}")
    _configure(stack, tenant, base, ["slack", "teams", "webhook"], paths={"teams": "fail-first/1/teams"})
    execution = run_execution(stack, batch_input(tenant, _lock_event(tenant)).payload)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert (output["delivered"], output["failed"]) == (2, 1)  # slack and the webhook; teams waits in the ledger
    time.sleep(1.5)  # its backoff (1 s locally)
    retry = run_execution(stack, {"mode": "reevaluate", "tenant_id": tenant})
    assert json.loads(retry["output"])["delivered"] == 1
    teams = [r for r in read_received(record) if "/teams/" in r["path"]]
    assert [r["status"] for r in teams] == [500, 202]
    assert len([r for r in read_received(record) if r["path"].endswith("chat.postMessage")]) == 1
    assert len([r for r in read_received(record) if r["path"] == f"/hooks/{tenant}"]) == 1


def test_receivers_down_throughout_get_the_reference_retries_then_fail(stack, webhook):
    """Two tenants at once, so that their minute of retries overlaps: one whose webhook answers 500
    and one whose only channel, Teams, answers 500. Then the webhook is fixed and re-evaluation
    delivers what failed."""
    base, record = webhook
    hook_tenant, teams_tenant = _tenant(), _tenant()
    notify = RULE | {"actions": [{"type": "notify"}]}
    push(stack, hook_tenant, [notify], f"{base}/status/500/{hook_tenant}")  # the receiver answers 500, always
    set_secret(stack, hook_tenant, "another-secret")
    push(stack, teams_tenant, [notify], None)
    _configure(stack, teams_tenant, base, ["teams"], paths={"teams": "status/500/teams"})
    started = [start_execution(stack, batch_input(t, _lock_event(t)).payload) for t in (hook_tenant, teams_tenant)]
    hook, teams = (wait_execution(stack, arn, timeout=240) for arn in started)

    for execution in (hook, teams):
        assert execution["status"] == "FAILED" and execution["error"] == "AllNotificationsFailedException"
        assert states_entered(execution)[-2:] == ["TriggerNotifications", "Fail"]
        assert "HTTP 500" in execution["cause"]
        # the first attempt and the reference's 6 retries...
        failures = [e for e in execution["history"] if e["type"] == "TaskFailed"]
        assert [e["taskFailedEventDetails"]["error"] for e in failures] == ["AllNotificationsFailedException"] * 7
        # ...after waits doubling from the interval (1 s locally): at least 1, 2, 4, 8, 16, 32 s
        scheduled = [e["timestamp"] for e in execution["history"] if e["type"] == "TaskScheduled"][-7:]
        waits = [(b - a).total_seconds() for a, b in zip(scheduled, scheduled[1:], strict=False)]
        assert all(wait >= 0.9 * 2**n for n, wait in enumerate(waits)), waits
    assert "teams: webhook" in teams["cause"]
    # each attempt over HTTP
    assert len([r for r in read_received(record) if r["path"] == f"/status/500/{hook_tenant}"]) == 7
    assert len([r for r in read_received(record) if r["path"].startswith(f"/status/500/teams/{teams_tenant}/")]) == 7

    # The webhook is fixed; once its backoff passed (1 s locally), re-evaluation delivers what failed.
    push(stack, hook_tenant, [notify], f"{base}/hooks/{hook_tenant}")
    time.sleep(1.5)
    again = run_execution(stack, {"mode": "reevaluate", "tenant_id": hook_tenant, "scheduled_time": "2026-11-27T10:00:00Z"})
    assert again["status"] == "SUCCEEDED"
    assert states_entered(again)[-2:] == ["TriggerNotifications", "Success"]
    delivered = [r for r in read_received(record) if r["path"] == f"/hooks/{hook_tenant}"]
    assert len(delivered) == 1 and signature_ok(delivered[0], "another-secret")
    # and once delivered, re-evaluation has nothing left to do
    last = run_execution(stack, {"mode": "reevaluate", "tenant_id": hook_tenant})
    assert states_entered(last)[-2:] == ["FoundMatchingRules", "Success"]


def test_a_recipient_outside_the_tenants_domains_is_dead_lettered_at_once_with_why(stack, webhook):
    base, record = webhook
    tenant = _tenant()
    push(stack, tenant, [RULE | {"actions": [{"type": "notify"}]}], None)
    _configure(stack, tenant, base, ["email"])
    before = len(stack.sent_emails())
    execution = run_execution(stack, batch_input(tenant, _lock_event(tenant, "victim@elsewhere.example")).payload)
    assert execution["status"] == "SUCCEEDED"  # nothing a retry could change: no retries, no Fail
    assert json.loads(execution["output"])["dead_lettered"] == 1
    assert len(stack.sent_emails()) == before
    table = stack.resource("dynamodb").Table(stack.outputs["state_table"])
    items = table.query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": ledger.partition(tenant)})["Items"]
    assert [(i["status"], i["sk"].endswith("-email")) for i in items] == [("dead_lettered", True)]
    assert "outside the tenant's recipient_domains" in str(items[0].get("detail") or items[0])
