"""Redrive: what waits in a dead-letter queue goes back through the pipeline, losing nothing.

- ``raw-events-dlq``: messages SQS moved there after ``maxReceiveCount`` failed receives (an outage
  downstream) are replayed through the normalize function as the Lambda service would hand them
  over: the same message id, the same sender (``SenderId``: the producer trust boundary still
  applies) and envelope. A message is deleted from the dead-letter queue only once the function
  took it; one it reports failed stays. Rejected records (``rejection_reason``) stay too: replaying
  them changes nothing until their integration is fixed (docs/operations.md).
- ``dead-notifications``: each notification goes back in the ledger, pending and due now, with
  fresh attempts; the sweep delivers it.

Replaying through the function (rather than moving messages to the source queue) keeps each
message's id and sender as the producer sent it: a moved message is a new message, and its sender
would be whoever moved it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from handlers.ledger import Ledger

RECEIVE_VISIBILITY = 120  # seconds a message being replayed stays hidden from other readers


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message (as ReceiveMessage returns it) as the Lambda service hands it to a function."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        record = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in value:
            record["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            record["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        attributes[name] = record
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


@dataclass
class Replay:
    replayed: int = 0  # taken by the function and deleted from the dead-letter queue
    failed: int = 0  # reported failed by the function: still in the dead-letter queue
    rejected: int = 0  # rejected records: left in the dead-letter queue

    def as_dict(self) -> dict[str, int]:
        return {"replayed": self.replayed, "failed": self.failed, "rejected_left": self.rejected}


def replay_raw_events(sqs: Any, lam: Any, dlq_url: str, function: str, source_arn: str, region: str) -> Replay:
    """Replay the raw-events dead-letter queue through the normalize function, ten at a time."""
    result = Replay()
    skipped: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=RECEIVE_VISIBILITY,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not messages:
            break
        replay = []
        for message in messages:
            if "rejection_reason" in (message.get("MessageAttributes") or {}):
                skipped.append(message)
                result.rejected += 1
            else:
                replay.append(message)
        if not replay:
            continue
        event = {"Records": [lambda_record(m, source_arn, region) for m in replay]}
        response = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode("utf-8"))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            # The function failed as a whole: nothing of this batch was taken; stop and say why.
            raise RuntimeError(f"{function} failed on a replayed batch: {json.dumps(payload)[:500]}")
        failures = {f.get("itemIdentifier") for f in (payload or {}).get("batchItemFailures") or []}
        done = [m for m in replay if m["MessageId"] not in failures]
        result.failed += len(replay) - len(done)
        result.replayed += len(done)
        for i in range(0, len(done), 10):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])]
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=entries)
    # What stays is visible again at once, so the queue's depth says what is left.
    for i in range(0, len(skipped), 10):
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for n, m in enumerate(skipped[i : i + 10])]
        sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=entries)
    return result


def requeue_notifications(sqs: Any, table: Any, queue_url: str, tenant: str | None = None) -> dict[str, int]:
    """Dead notifications back in the ledger, pending and due now; their dead letters deleted."""
    moved = kept = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for message in messages:
            letter = json.loads(message["Body"])
            if tenant and letter["tenant_id"] != tenant:
                kept += 1  # another tenant's: visible again once its visibility timeout passes
                continue
            Ledger(table, letter["tenant_id"]).requeue(letter["match"], f"redriven after: {letter.get('reason', '')}")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return {"requeued": moved, "left": kept}
