"""TriggerNotifications in-process, against moto's AWS (in-process) and a real HTTP receiver on
127.0.0.1: what happens when the ledger cannot record a delivery the receiver acknowledged.

moto cannot throttle DynamoDB, so the one write that fails is injected (``Ledger.delivered``
raising the error boto3 raises once its own retries are spent); everything else is real."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator.lambda_worker import LambdaContext
from handlers import aws, ledger, tenant_settings
from handlers.ledger import Ledger, Status


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append({"headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    with mock_aws():
        env = {"AWS_DEFAULT_REGION": "us-east-1", "RULES_TABLE": "rules", "STATE_TABLE": "state", "CLAIMS_BUCKET": "claims",
               "WEBHOOK_SECRET_PREFIX": "coachflow/test/tenants/", "WEBHOOK_TIMEOUT_SECONDS": "5", "ALLOW_HTTP_WEBHOOKS": "true",
               "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "DELIVERY_LEASE_SECONDS": "120", "POWERTOOLS_SERVICE_NAME": "coachflow",
               "POWERTOOLS_METRICS_NAMESPACE": "Coachflow"}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from handlers import trigger_notifications

        # read at import, perhaps by an earlier test before the variable was set
        monkeypatch.setattr(trigger_notifications.metrics, "namespace", "Coachflow")
        aws.client.cache_clear(), aws.resource.cache_clear()
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        rules = dynamodb.create_table(TableName="rules", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}])  # fmt: skip
        state = dynamodb.create_table(TableName="state", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}])  # fmt: skip
        tenant_settings.update(rules, "acme", webhook_url=f"http://127.0.0.1:{server.server_port}/hooks/acme")
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="coachflow/test/tenants/acme", SecretString="k")
        os.environ["DEAD_NOTIFICATIONS_QUEUE_URL"] = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="dead")["QueueUrl"]
        yield {"state": state}
        aws.client.cache_clear(), aws.resource.cache_clear()
    server.shutdown()


def _context(seconds: float = 60) -> LambdaContext:
    return LambdaContext({"function_name": "trigger", "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:trigger",
                          "aws_request_id": "r", "deadline": time.time() + seconds})  # fmt: skip


MATCH = {"notification_id": "ab" * 16, "rule_id": "r", "title": "t", "user": {"email_addr": "amy@example.com"}, "event": {}}


def test_a_delivery_the_ledger_cannot_record_is_still_a_delivery(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import trigger_notifications

    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}, "UpdateItem")
    writes: list[str] = []

    def delivered(self: Ledger, notification: str, detail: str) -> None:
        writes.append(notification)
        raise throttled

    monkeypatch.setattr(Ledger, "delivered", delivered)
    result = trigger_notifications.handler({"tenant_id": "acme", "batch_id": "b", "match_count": 1, "matches": [MATCH]}, _context())
    assert (result["delivered"], result["failed"]) == (1, 0)  # never recorded as failed, never AllNotificationsFailed
    assert len(writes) == trigger_notifications.RECORD_ATTEMPTS  # it kept trying to record it
    (post,) = Receiver.received
    assert post["headers"]["X-Coachflow-Notification-Id"] == MATCH["notification_id"] == post["body"]["notification_id"]
    item = world["state"].get_item(Key={"pk": ledger.partition("acme"), "sk": MATCH["notification_id"]})["Item"]
    assert item["status"] == Status.SENDING  # not pending: only an expired lease (the deliverer died) retries it
    assert Ledger(world["state"], "acme").pending() == []


def test_a_recorded_delivery_is_final(world: dict[str, Any]) -> None:
    from handlers import trigger_notifications

    event = {"tenant_id": "acme", "batch_id": "b", "match_count": 1, "matches": [MATCH]}
    assert trigger_notifications.handler(event, _context())["delivered"] == 1
    again = trigger_notifications.handler(event, _context())  # a Step Functions retry, a redelivered batch
    assert (again["delivered"], again["duplicates"]) == (0, 1) and len(Receiver.received) == 1
