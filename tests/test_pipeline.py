"""The flow from the raw-events queue: outcomes, dead letters with reasons, deterministic executions,
idempotent redelivery and tenant isolation, on the applied local environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest

from emulator.stack import EXAMPLES, ROOT
from handlers import tenant_settings
from handlers.ingest import envelope
from handlers.outcomes import RejectReason
from tests.helpers import (
    TEST_PRODUCER,
    executions_named,
    push,
    read_received,
    run_execution,
    set_secret,
    states_entered,
    wait_execution,
    wait_for,
)

pytestmark = pytest.mark.integration


def _send(stack, body: str, tenant: str | None, source: str | None, producer: str = TEST_PRODUCER) -> str:
    """Send as ``producer`` (the access key: the embedded AWS reports it as the message's SenderId)."""
    sqs = boto3.session.Session(aws_access_key_id=producer, aws_secret_access_key="x", region_name="us-east-1").client(
        "sqs", endpoint_url=stack.endpoint
    )
    return sqs.send_message(QueueUrl=stack.outputs["raw_events_queue_url"], MessageBody=body, MessageAttributes=envelope(tenant, source))[
        "MessageId"
    ]


def _register(stack, tenant: str, *producers: str) -> None:
    tenant_settings.update(stack.resource("dynamodb").Table(stack.outputs["rules_table"]), tenant, producers=list(producers))


def _all_dead_letters(stack) -> list[dict[str, Any]]:
    """Every message in the raw-events DLQ now, left visible for the other tests: each is received
    once (hidden while reading, so the next receive returns others) and made visible again."""
    sqs, url = stack.client("sqs"), stack.outputs["raw_events_dlq_url"]
    seen: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60)
        messages = batch.get("Messages", [])
        if not messages:
            break
        seen.extend(messages)
    for i in range(0, len(seen), 10):
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(seen[i : i + 10])]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return seen


def _dead_letters(stack, original_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Dead letters of the given messages, by original message id; others stay for their own tests."""
    found: dict[str, dict[str, Any]] = {}
    for message in _all_dead_letters(stack):
        original = message.get("MessageAttributes", {}).get("original_message_id", {}).get("StringValue")
        if original in original_ids:
            found[original] = message
    return found


def test_every_rejection_reason_reaches_the_dlq_and_neighbours_still_succeed(stack):
    tenant = f"pl-{uuid.uuid4().hex[:8]}"
    _register(stack, tenant, TEST_PRODUCER)
    good = (EXAMPLES / "okta" / "user_account_lock.json").read_text()
    wrong_types = json.loads(good)
    wrong_types["published"] = {"not": "a time"}
    # over the record limit, and over what a dead letter carries inline (SQS's own limit is 256 KiB)
    oversized = json.dumps({**json.loads(good), "displayMessage": "x" * 210_000})
    sent = {
        RejectReason.MALFORMED: _send(stack, '{"eventType": "user.session.start", "published": ', tenant, "okta"),
        RejectReason.UNKNOWN_SOURCE: _send(stack, good, tenant, "not-a-vendor"),
        RejectReason.MISSING_TENANT: _send(stack, good, None, "okta"),
        RejectReason.WRONG_TYPES: _send(stack, json.dumps(wrong_types), tenant, "okta"),
        RejectReason.MISSING_FIELD: _send(
            stack, json.dumps({k: v for k, v in json.loads(good).items() if k != "published"}), tenant, "okta"
        ),
        RejectReason.OVERSIZED: _send(stack, oversized, tenant, "okta"),
        # a valid record, but its sender is no producer of this tenant: it may not speak for it
        RejectReason.UNREGISTERED_PRODUCER: _send(stack, good, tenant, "okta", producer="AKIDINTRUDER"),
    }
    assert set(sent) == set(RejectReason)  # every reason, through the deployed pipeline
    ok = _send(stack, good, tenant, "okta")  # a good neighbour in the same SQS batch
    by_message = wait_for(lambda: (lambda d: d if len(d) == len(sent) else None)(_dead_letters(stack, set(sent.values()))),
                          timeout=90, what="every rejected record in the DLQ")  # fmt: skip
    for reason, message_id in sent.items():
        attrs = by_message[message_id]["MessageAttributes"]
        assert attrs["rejection_reason"]["StringValue"] == reason
        assert attrs["rejection_detail"]["StringValue"] not in ("", "-")
    # the oversized record is too big for a message: it waits in S3, the dead letter points to it
    pointer = json.loads(by_message[sent[RejectReason.OVERSIZED]]["Body"])["claim_check"]
    kept = stack.client("s3").get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read().decode()
    assert json.loads(kept)["displayMessage"] == "x" * 210_000
    assert ok not in by_message
    (execution,) = wait_for(lambda: executions_named(stack, tenant), what="the good record's execution")
    assert wait_execution(stack, execution["executionArn"])["status"] == "SUCCEEDED"


def test_a_rejected_record_holding_what_sqs_refuses_is_dead_lettered_through_s3(stack):
    # JSON's "\uffff" escape is valid and reads as U+FFFF, which an SQS message may not hold: the
    # record's canonical form (its dead letter's body) does. Found by the strict embedded AWS.
    tenant = f"pl-{uuid.uuid4().hex[:8]}"
    _register(stack, tenant, TEST_PRODUCER)
    record = json.loads((EXAMPLES / "okta" / "user_account_lock.json").read_text())
    record["published"] = {"not": "a time \uffff"}
    sent = _send(stack, json.dumps(record), tenant, "okta")  # ASCII on the wire: json.dumps escapes it
    letter = wait_for(lambda: _dead_letters(stack, {sent}).get(sent), timeout=90, what="the dead letter")
    attributes = letter["MessageAttributes"]
    assert attributes["rejection_reason"]["StringValue"] == RejectReason.WRONG_TYPES
    pointer = json.loads(letter["Body"])["claim_check"]
    assert attributes["claim_check"]["StringValue"] == f"s3://{pointer['bucket']}/{pointer['key']}"
    kept = stack.client("s3").get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read().decode("utf-8")
    assert json.loads(kept)["published"] == {"not": "a time \uffff"}  # the record as it was, nothing lost


def test_redelivered_events_start_one_execution_and_notify_once(stack, webhook):
    base, record = webhook
    tenant = f"pl-{uuid.uuid4().hex[:8]}"
    push(stack, tenant, [{"rule_id": "locked", "match": {"class_uid": [3001]}}], f"{base}/hooks/{tenant}")
    set_secret(stack, tenant, "k")
    body = (EXAMPLES / "okta" / "user_account_lock.json").read_text()
    _send(stack, body, tenant, "okta")
    (first,) = wait_for(lambda: executions_named(stack, tenant), what="the first execution")
    assert wait_execution(stack, first["executionArn"])["status"] == "SUCCEEDED"
    _send(stack, body, tenant, "okta")  # the same event again (an at-least-once producer)
    wait_for(lambda: len(stack.client("logs").filter_log_events(
        logGroupName=f"/aws/lambda/{stack.outputs['function_names']['normalize']}", filterPattern='"batch already evaluated"'
    )["events"]) > 0, what="the redelivery to be recognised")  # fmt: skip
    assert len(executions_named(stack, tenant)) == 1
    assert len(read_received(record)) == 1


def test_a_tenants_rules_never_see_another_tenants_events(stack, webhook):
    base, record = webhook
    alice, bob = f"pl-a-{uuid.uuid4().hex[:6]}", f"pl-b-{uuid.uuid4().hex[:6]}"
    catch_all = [{"rule_id": "everything-okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}}}]
    push(stack, alice, [{"rule_id": "nothing", "match": {"class_uid": [1]}}], f"{base}/hooks/{alice}")
    push(stack, bob, catch_all, f"{base}/hooks/{bob}")
    set_secret(stack, bob, "k")
    _send(stack, (EXAMPLES / "okta" / "user_account_lock.json").read_text(), alice, "okta")
    (execution,) = wait_for(lambda: executions_named(stack, alice), what="alice's execution")
    done = wait_execution(stack, execution["executionArn"])
    assert states_entered(done)[-2:] == ["FoundMatchingRules", "Success"]
    assert executions_named(stack, bob) == []

    # Even a forged batch that names bob but carries alice's event is not evaluated with bob's rules.
    event = json.loads(done["input"])["events"][0]
    forged = run_execution(stack, {"mode": "events", "tenant_id": bob, "batch_id": "forged", "events": [event]})
    assert states_entered(forged)[-2:] == ["FoundMatchingRules", "Success"]
    check_output = [e for e in forged["history"] if e["type"] == "TaskSucceeded"][0]["taskSucceededEventDetails"]["output"]
    assert json.loads(check_output)["Payload"]["decisions"] == {"foreign_tenant": 1}
    assert read_received(record) == []


def test_dead_letters_of_one_message_are_sent_within_sqs_batch_limits(stack):
    # Ten rejected records of 26,000 bytes in one message (itself under SQS's 262,144-byte limit):
    # their dead letters, with reason attributes, weigh more than one SendMessageBatch may carry
    # (262,144 bytes, attributes included; the embedded AWS enforces it as AWS does).
    tenant = f"pl-{uuid.uuid4().hex[:8]}"
    _register(stack, tenant, TEST_PRODUCER)
    good = json.loads((EXAMPLES / "okta" / "user_account_lock.json").read_text())
    records = []
    for n in range(10):
        record = {**good, "uuid": f"big-{n}", "published": ["not", "a", "time"]}
        record["displayMessage"] = "x" * (26_000 - len(json.dumps(record, separators=(",", ":"))))
        records.append(record)
    body = json.dumps(records, separators=(",", ":"))
    assert len(body.encode()) < 262_144
    sent = _send(stack, body, tenant, "okta")
    letters: dict[str, dict[str, Any]] = {}

    def all_ten() -> bool:
        for message in _all_dead_letters(stack):
            if message.get("MessageAttributes", {}).get("original_message_id", {}).get("StringValue") == sent:
                letters[message["MessageId"]] = message
        return len(letters) >= 10

    wait_for(all_ten, timeout=90, what="ten dead letters with their reasons")
    assert len(letters) == 10
    assert {m["MessageAttributes"]["rejection_reason"]["StringValue"] for m in letters.values()} == {"wrong_types"}
    assert sorted(json.loads(m["Body"])["uuid"] for m in letters.values()) == [f"big-{n}" for n in range(10)]


def test_a_producer_speaks_only_for_the_tenants_that_registered_it(stack, webhook):
    base, record = webhook
    alice, bob = f"pl-a-{uuid.uuid4().hex[:6]}", f"pl-b-{uuid.uuid4().hex[:6]}"
    catch_all = [{"rule_id": "everything-okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}}}]
    for tenant in (alice, bob):
        push(stack, tenant, catch_all, f"{base}/hooks/{tenant}")
        set_secret(stack, tenant, "k")
    _register(stack, alice, "AKIDALICEINTEGRATION")
    _register(stack, bob, "AKIDBOBINTEGRATION", "AROABOBROLE:*")  # a role: any of its sessions
    body = (EXAMPLES / "okta" / "user_account_lock.json").read_text()
    forged = _send(stack, body, bob, "okta", producer="AKIDALICEINTEGRATION")  # alice's integration names bob
    _send(stack, body, bob, "okta", producer="AROABOBROLE:collector-7")
    (letter,) = wait_for(lambda: list(_dead_letters(stack, {forged}).values()), what="the forged record's dead letter")
    attributes = letter["MessageAttributes"]
    assert attributes["rejection_reason"]["StringValue"] == "unregistered_producer"
    assert "AKIDALICEINTEGRATION" in attributes["rejection_detail"]["StringValue"]
    (execution,) = wait_for(lambda: executions_named(stack, bob), what="bob's own record's execution")
    assert wait_execution(stack, execution["executionArn"])["status"] == "SUCCEEDED"
    execution_input = json.loads(stack.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"])
    assert len(execution_input["events"]) == 1
    assert [r["path"] for r in read_received(record)] == [f"/hooks/{bob}"]  # one notification: bob's own record


def test_the_redrive_replays_failed_messages_as_their_producers_sent_them(stack):
    """A message SQS moved to the DLQ after maxReceiveCount failures (sent here straight to the DLQ,
    as SQS would have moved it: the producer's id and envelope) is replayed through normalize by
    ./build.sh redrive raw-events-dlq; a stranger's message is refused again; rejected records stay."""
    tenant = f"rd-{uuid.uuid4().hex[:8]}"
    _register(stack, tenant, "AKIDREDRIVEPRODUCER")
    body = (EXAMPLES / "okta" / "user_account_lock.json").read_text()
    url = stack.outputs["raw_events_dlq_url"]

    def moved(producer: str) -> str:
        sqs = boto3.session.Session(aws_access_key_id=producer, aws_secret_access_key="x", region_name="us-east-1").client(
            "sqs", endpoint_url=stack.endpoint
        )
        return sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=envelope(tenant, "okta"))["MessageId"]

    failed, stranger = moved("AKIDREDRIVEPRODUCER"), moved("AKIDREDRIVESTRANGER")
    rejected_before = sum("rejection_reason" in m.get("MessageAttributes", {}) for m in _all_dead_letters(stack))
    redrive = subprocess.run(
        [sys.executable, "-m", "cli", "redrive", "raw-events-dlq", "--endpoint", stack.endpoint, "--queue-url", url,
         "--function", stack.outputs["function_names"]["normalize"]],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )  # fmt: skip
    assert redrive.returncode == 0, redrive.stderr
    result = json.loads(redrive.stdout)
    assert result["replayed"] == 2 and result["failed"] == 0 and result["rejected_left"] >= rejected_before
    # the producer's message was evaluated; the stranger's is refused as when it was first sent
    assert wait_for(lambda: executions_named(stack, f"{tenant}-"), 60, "the replayed message's execution")
    letters = wait_for(lambda: _dead_letters(stack, {stranger}), 60, "the stranger's dead letter")
    assert letters[stranger]["MessageAttributes"]["rejection_reason"]["StringValue"] == RejectReason.UNREGISTERED_PRODUCER
    remaining = {m["MessageId"] for m in _all_dead_letters(stack)}
    assert failed not in remaining and stranger not in remaining  # replayed messages left the DLQ
    assert all("rejection_reason" in m.get("MessageAttributes", {}) for m in _all_dead_letters(stack))
