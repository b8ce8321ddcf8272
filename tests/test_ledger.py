"""The notification ledger on its own, against moto's DynamoDB (in-process: no Lambda, no server)
with a clock the test moves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers import ledger
from handlers.ledger import LEASE_SECONDS, MAX_ATTEMPTS, Ledger, Status


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def _match(n: int = 1) -> dict[str, Any]:
    return {"notification_id": f"{n:032x}", "rule_id": "r", "user": {"email_addr": "amy@example.com"}}


def _item(table: Any, tenant: str, match: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = table.get_item(Key={"pk": ledger.partition(tenant), "sk": match["notification_id"]})["Item"]
    return item


def test_a_claim_is_exclusive_until_its_lease_expires(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    assert book.claim(match)
    assert not book.claim(match)  # a concurrent deliverer (a retry, a redelivered batch) backs off
    item = _item(table, "acme", match)
    assert item["status"] == Status.SENDING and item["attempts"] == 1 and json.loads(item["match"]) == match
    assert item["expires_at"] == int(clock.now) + ledger.RETENTION_SECONDS
    clock.now += LEASE_SECONDS + 1  # the deliverer died holding the lease
    assert book.claim(match)
    assert _item(table, "acme", match)["attempts"] == 2


def test_delivered_is_final(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    assert book.claim(match)
    book.delivered(match["notification_id"], "HTTP 200")
    item = _item(table, "acme", match)
    assert item["status"] == Status.DELIVERED and item["detail"] == "HTTP 200" and "lease_until" not in item
    clock.now += 10 * LEASE_SECONDS
    assert not book.claim(match) and not book.defer(match, "late")
    assert book.pending() == []


def test_a_failed_delivery_is_pending_until_retried(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    assert book.claim(match)
    book.failed(match["notification_id"], "webhook answered HTTP 500")
    assert _item(table, "acme", match)["status"] == Status.PENDING
    assert book.pending() == [match]
    assert book.claim(match)  # the retry takes it
    assert book.pending() == []  # held by the retry's lease
    clock.now += LEASE_SECONDS + 1
    assert book.pending() == [match]  # the retry died: re-evaluation picks it up again


def test_defer_records_pending_work_without_an_attempt(table: Any) -> None:
    book, match = Ledger(table, "acme", Clock()), _match()
    assert book.defer(match, "deferred: the function's deadline was near")
    item = _item(table, "acme", match)
    assert (item["status"], item["attempts"]) == (Status.PENDING, 0) and item["detail"].startswith("deferred")
    assert book.pending() == [match]
    assert book.claim(match)
    assert not book.defer(match, "again")  # never takes a notification back from its deliverer


def test_retries_stop_after_the_last_attempt(table: Any) -> None:
    book, match = Ledger(table, "acme", Clock()), _match()
    for _ in range(MAX_ATTEMPTS):
        assert book.claim(match)
        book.failed(match["notification_id"], "down")
    assert _item(table, "acme", match)["attempts"] == MAX_ATTEMPTS
    assert book.pending() == []


def test_tenants_have_separate_ledgers(table: Any) -> None:
    acme, globex, match = Ledger(table, "acme", Clock()), Ledger(table, "globex", Clock()), _match()
    assert acme.defer(match, "x")
    assert globex.pending() == []
    assert globex.claim(match)  # the same id in another tenant is another notification
    assert [m["notification_id"] for m in acme.pending()] == [match["notification_id"]]


def test_pending_reads_every_page(table: Any) -> None:
    book = Ledger(table, "acme", Clock())
    big = "x" * 20_000  # about 50 items per 1 MB query page
    for n in range(120):
        assert book.defer({**_match(n), "note": big}, "x")
    assert len(book.pending()) == 120
