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
from handlers.ledger import LEASE_SECONDS, MAX_ROUNDS, Ledger, Status, backoff, due_tenants, exhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        yield dynamodb.create_table(  # as terraform/coachflow/storage.tf declares it
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "due_shard", "AttributeType": "S"},
                {"AttributeName": "due_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": ledger.DUE_INDEX,
                    "KeySchema": [{"AttributeName": "due_shard", "KeyType": "HASH"}, {"AttributeName": "due_at", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
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
    assert book.claim(match) == 1
    assert book.claim(match) is None  # a concurrent deliverer (a retry, a redelivered batch) backs off
    item = _item(table, "acme", match)
    assert item["status"] == Status.SENDING and item["attempts"] == 1 and json.loads(item["match"]) == match
    assert item["expires_at"] == int(clock.now) + ledger.RETENTION_SECONDS
    clock.now += LEASE_SECONDS + 1  # the deliverer died holding the lease
    assert book.claim(match) == 2
    assert _item(table, "acme", match)["attempts"] == 2


def _retried(match: dict[str, Any]) -> dict[str, Any]:
    """A match as re-evaluation gets it back: one delivery (stored before channels: the webhook's)."""
    return {**match, "delivery": {"channel": "webhook", "audience": "person", "notification_id": match["notification_id"]}}


def test_a_match_stored_by_a_channel_delivery_comes_back_as_that_delivery(table: Any) -> None:
    clock = Clock()
    book = Ledger(table, "acme", clock)
    match = {**_match(), "delivery": {"channel": "slack", "audience": "person", "notification_id": "n"}}
    assert book.defer(match, "deferred")
    assert book.pending() == [match]


def test_delivered_is_final(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    assert book.claim(match)
    book.delivered(match["notification_id"], "HTTP 200")
    item = _item(table, "acme", match)
    assert item["status"] == Status.DELIVERED and item["detail"] == "HTTP 200" and "lease_until" not in item
    clock.now += 10 * LEASE_SECONDS
    assert book.claim(match) is None and not book.defer(match, "late")
    assert book.pending() == []


def test_a_failed_delivery_is_pending_again_after_its_backoff(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    attempt = book.claim(match)
    assert attempt == 1
    book.failed(match["notification_id"], attempt, "webhook answered HTTP 500")
    assert _item(table, "acme", match)["status"] == Status.PENDING
    assert book.pending() == []  # backing off
    clock.now += backoff(1)
    assert book.pending() == [_retried(match)]
    assert book.claim(match) == 2  # the retry takes it
    assert book.pending() == []  # held by the retry's lease
    clock.now += LEASE_SECONDS + 1
    assert book.pending() == [_retried(match)]  # the retry died: re-evaluation picks it up again


def test_defer_records_pending_work_without_an_attempt(table: Any) -> None:
    book, match = Ledger(table, "acme", Clock()), _match()
    assert book.defer(match, "deferred: the function's deadline was near")
    item = _item(table, "acme", match)
    assert (item["status"], item["attempts"]) == (Status.PENDING, 0) and item["detail"].startswith("deferred")
    assert book.pending() == [_retried(match)]
    assert book.claim(match) == 1  # a deferral is not an attempt
    assert not book.defer(match, "again")  # never takes a notification back from its deliverer


def test_the_last_attempt_is_dead_lettered_never_silently_dropped(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    for n in range(1, MAX_ROUNDS + 1):
        attempt = book.claim(match)
        assert attempt == n and exhausted(attempt) == (n == MAX_ROUNDS)
        if not exhausted(attempt):
            book.failed(match["notification_id"], attempt, "down")
            clock.now += backoff(attempt)
    # the adapter sends it to the dead-notifications queue, then records that
    book.dead_lettered(match["notification_id"], "down")
    item = _item(table, "acme", match)
    assert item["status"] == Status.DEAD_LETTERED and "due_at" not in item and "due_shard" not in item
    clock.now += 10 * LEASE_SECONDS
    assert book.pending() == [] and book.claim(match) is None and due_tenants(table, int(clock.now)) == set()


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n) for n in range(1, MAX_ROUNDS + 1)]
    assert delays == sorted(delays) and delays[0] == 60 and delays[-1] == 3600


def test_the_state_machines_retries_are_one_round_of_backoff_and_of_the_limit() -> None:
    # 7 attempts per round: an execution's first attempt and its 6 retries, seconds apart
    assert [backoff(n, 60, per_round=7) for n in (1, 7, 8, 14, 15)] == [60, 60, 120, 120, 240]
    assert not exhausted(MAX_ROUNDS * 7 - 1, per_round=7) and exhausted(MAX_ROUNDS * 7, per_round=7)
    assert Ledger(None, "t", attempts_per_round=7).exhausted(MAX_ROUNDS * 7)  # type: ignore[arg-type]


def test_the_sweep_finds_every_tenant_with_due_work_and_only_due_work(table: Any) -> None:
    clock = Clock()
    now = lambda: int(clock.now)  # noqa: E731
    acme, globex, initech = (Ledger(table, t, clock) for t in ("acme", "globex", "initech"))
    assert acme.defer(_match(1), "deadline")  # due now
    attempt = globex.claim(_match(2))
    assert attempt is not None
    globex.failed(_match(2)["notification_id"], attempt, "500")  # due after its backoff
    assert initech.claim(_match(3)) is not None  # held by a live lease
    delivered = _match(4)
    assert acme.claim(delivered) is not None
    acme.delivered(delivered["notification_id"], "HTTP 200")
    assert due_tenants(table, now()) == {"acme"}
    clock.now += backoff(1)
    assert due_tenants(table, now()) == {"acme", "globex"}
    clock.now += LEASE_SECONDS
    assert due_tenants(table, now()) == {"acme", "globex", "initech"}  # its deliverer died
    for tenant in (acme, globex, initech):
        assert tenant.pending()  # what the sweep starts re-evaluations for, each tenant finds


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


def test_a_redriven_notification_is_due_again_with_fresh_attempts(table: Any) -> None:
    clock = Clock()
    book, match = Ledger(table, "acme", clock), _match()
    for _ in range(MAX_ROUNDS):
        attempt = book.claim(match)
        assert attempt is not None
        book.failed(match["notification_id"], attempt, "down")
        clock.now += backoff(attempt)
    book.dead_lettered(match["notification_id"], "down")
    book.requeue(match, "redriven")
    item = _item(table, "acme", match)
    assert (item["status"], item["attempts"]) == (Status.PENDING, 0)
    assert book.pending() == [_retried(match)] and due_tenants(table, int(clock.now)) == {"acme"}
    assert book.claim(match) == 1
