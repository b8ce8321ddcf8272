"""The notification ledger: one item per notification in the state table, so that each is delivered
at least once and, but for the two cases below, exactly once, whatever retries, redeliveries and
concurrent re-evaluations happen.

Life of a notification (``Status``)::

    (none) --claim--> SENDING --delivered--> DELIVERED
             defer    |   |--failed-------> PENDING (due after a backoff) --claim--> SENDING ...
               \\      |   \\--failed, last attempt--> DEAD_LETTERED
                \\     \\-- lease expires (the deliverer died) --> claimable again
                 \\--> PENDING (due now)

- ``claim`` takes a lease with a conditional write: one deliverer at a time, never after
  DELIVERED or DEAD_LETTERED. Every claim is an attempt; the lease must outlast the deliverer's
  function timeout (Terraform derives it so and validates it).
- ``failed`` leaves it PENDING with its match, due again after an exponential backoff (by rounds:
  an execution's attempt and the state machine's retries of it are one round); when the last
  attempt of round ``MAX_ROUNDS`` fails (``exhausted``), the deliverer sends it to the
  dead-notifications queue with its reason and records it ``dead_lettered``. (Should that send
  fail, it stays PENDING and the next attempt tries again: nothing ages out silently.)
- Work that is not finished (PENDING, or SENDING whose lease may expire) carries ``due_shard`` and
  ``due_at``: the sparse index ``due`` holds exactly those items, so the sweep finds every tenant
  with due work without scanning the table (``due_tenants``).
- Items expire through TTL ``RETENTION_SECONDS`` after their last write.

Duplicates are possible in two cases only, and receivers deduplicate on the notification id (the
webhook carries it): a deliverer that dies after the receiver answered but before ``delivered``
was recorded, and a ``delivered`` write that fails after every retry (logged and counted).

Keys: partition ``notif#<tenant>``, sort key the notification id (``notify.notification_id``: the
same match always has the same id).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from handlers.dynamo import Table, conditional, pages

LEASE_SECONDS = 960  # default lease: longer than the longest a Lambda function can run (900 s)
RETENTION_SECONDS = 14 * 86400
MAX_ROUNDS = 10  # rounds of delivery (see ``rounds``) before a notification is dead-lettered
BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 60, 3600  # 1, 2, 4 ... minutes between attempts, at most an hour
DUE_INDEX = "due"  # the state table's sparse index of unfinished notifications
DUE_SHARDS = 4  # index partitions, so one hot key never carries every tenant's due work
PARTITION_PREFIX = "notif#"


class Status(StrEnum):
    PENDING = "pending"  # waiting for a (re)try: failed, deferred, or never claimed
    SENDING = "sending"  # claimed: a deliverer holds the lease
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"  # every attempt failed; handed to the dead-notifications queue


def partition(tenant: str) -> str:
    """The state-table partition holding a tenant's notifications (sort key: notification id)."""
    return f"{PARTITION_PREFIX}{tenant}"


def due_shard(notification: str) -> str:
    return f"due#{int(notification[:8], 16) % DUE_SHARDS}"


def rounds(attempt: int, per_round: int = 1) -> int:
    """How many rounds of delivery ``attempt`` attempts make. A round is one execution's
    TriggerNotifications: its first attempt and the state machine's retries (``per_round`` attempts
    at most, seconds apart); the ledger's backoff and its limit count rounds, so that a burst of
    retries within one execution neither stretches the next wait nor exhausts the notification."""
    return -(-attempt // per_round)


def exhausted(attempt: int, per_round: int = 1) -> bool:
    """Whether a failed ``attempt`` was the last one (the last of round ``MAX_ROUNDS``): the
    notification goes to the dead-notifications queue (``dead_lettered``) instead of being retried."""
    return attempt >= MAX_ROUNDS * per_round


def backoff(attempt: int, base: int = BACKOFF_SECONDS, per_round: int = 1) -> int:
    """Seconds before a notification whose ``attempt``-th attempt failed is due again: ``base``,
    doubling with every round, at most ``MAX_BACKOFF_SECONDS``."""
    return int(min(base * 2 ** max(0, rounds(attempt, per_round) - 1), MAX_BACKOFF_SECONDS))


def _compact(match: dict[str, Any]) -> str:
    return json.dumps(match, separators=(",", ":"))


class Ledger:
    """One tenant's notifications in the state table."""

    def __init__(
        self,
        table: Table,
        tenant: str,
        clock: Callable[[], float] = time.time,
        lease_seconds: int = LEASE_SECONDS,
        backoff_seconds: int = BACKOFF_SECONDS,
        attempts_per_round: int = 1,
    ) -> None:
        self.table = table
        self.tenant = tenant
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.backoff_seconds = backoff_seconds
        self.attempts_per_round = attempts_per_round

    def exhausted(self, attempt: int) -> bool:
        return exhausted(attempt, self.attempts_per_round)

    def _key(self, notification: str) -> dict[str, str]:
        return {"pk": partition(self.tenant), "sk": notification}

    def claim(self, match: dict[str, Any]) -> int | None:
        """Take the delivery lease: the number of this attempt, or None when the notification was
        delivered or dead-lettered already, or someone else holds its lease."""
        now = int(self.clock())
        notification = match["notification_id"]
        taken = conditional(
            self.table.update_item,
            Key=self._key(notification),
            UpdateExpression="SET #s = :sending, lease_until = :lease, #m = if_not_exists(#m, :match), "
            "attempts = if_not_exists(attempts, :zero) + :one, expires_at = :exp, due_shard = :shard, due_at = :lease",
            ConditionExpression="attribute_not_exists(pk) OR #s = :pending OR (#s = :sending AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status", "#m": "match"},
            ExpressionAttributeValues={
                ":sending": Status.SENDING.value,
                ":pending": Status.PENDING.value,
                ":lease": now + self.lease_seconds,
                ":now": now,
                ":match": _compact(match),
                ":zero": 0,
                ":one": 1,
                ":exp": now + RETENTION_SECONDS,
                ":shard": due_shard(notification),
            },
            ReturnValues="UPDATED_NEW",
        )
        return None if taken is None else int(taken["Attributes"]["attempts"])

    def defer(self, match: dict[str, Any], why: str) -> bool:
        """Record a notification as pending and due now, without trying it (no time left); False
        if it was claimed, delivered or dead-lettered already."""
        now = int(self.clock())
        notification = match["notification_id"]
        deferred = conditional(
            self.table.update_item,
            Key=self._key(notification),
            UpdateExpression="SET #s = :pending, #m = if_not_exists(#m, :match), attempts = if_not_exists(attempts, :zero), "
            "expires_at = :exp, detail = :why, due_shard = :shard, due_at = :now",
            ConditionExpression="attribute_not_exists(pk) OR #s = :pending",
            ExpressionAttributeNames={"#s": "status", "#m": "match"},
            ExpressionAttributeValues={
                ":pending": Status.PENDING.value,
                ":match": _compact(match),
                ":zero": 0,
                ":exp": now + RETENTION_SECONDS,
                ":why": why[:500],
                ":shard": due_shard(notification),
                ":now": now,
            },
        )
        return deferred is not None

    def delivered(self, notification: str, detail: str) -> None:
        self.table.update_item(
            Key=self._key(notification),
            UpdateExpression="SET #s = :s, detail = :d, finished_at = :t REMOVE lease_until, due_shard, due_at",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": Status.DELIVERED.value, ":d": detail[:500], ":t": int(self.clock())},
        )

    def failed(self, notification: str, attempt: int, detail: str) -> None:
        """Record a failed attempt: PENDING, due again after a backoff."""
        now = int(self.clock())
        self.table.update_item(
            Key=self._key(notification),
            UpdateExpression="SET #s = :s, detail = :d, finished_at = :t, due_at = :due REMOVE lease_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": Status.PENDING.value,
                ":d": detail[:500],
                ":t": now,
                ":due": now + backoff(attempt, self.backoff_seconds, self.attempts_per_round),
            },
        )

    def requeue(self, match: dict[str, Any], why: str) -> None:
        """Put a dead-lettered notification back: pending, due now, with fresh attempts (an operator
        fixed the cause: ``./build.sh redrive dead-notifications``)."""
        now = int(self.clock())
        notification = match["notification_id"]
        self.table.update_item(
            Key=self._key(notification),
            UpdateExpression="SET #s = :pending, #m = :match, attempts = :zero, detail = :why, expires_at = :exp, "
            "due_shard = :shard, due_at = :now REMOVE lease_until",
            ExpressionAttributeNames={"#s": "status", "#m": "match"},
            ExpressionAttributeValues={
                ":pending": Status.PENDING.value,
                ":match": _compact(match),
                ":zero": 0,
                ":why": why[:500],
                ":exp": now + RETENTION_SECONDS,
                ":shard": due_shard(notification),
                ":now": now,
            },
        )

    def dead_lettered(self, notification: str, detail: str) -> None:
        """Record that the notification was handed to the dead-notifications queue: no more attempts."""
        self.table.update_item(
            Key=self._key(notification),
            UpdateExpression="SET #s = :s, detail = :d, finished_at = :t REMOVE lease_until, due_shard, due_at",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": Status.DEAD_LETTERED.value, ":d": detail[:500], ":t": int(self.clock())},
        )

    def pending(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The matches due for a retry, at most ``limit`` (the rest wait for the next re-evaluation):
        failed ones whose backoff passed, deferred ones, and ones whose delivery lease expired (the
        function delivering them died)."""
        query = pages(
            self.table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="(#s = :pending AND (attribute_not_exists(due_at) OR due_at <= :now)) OR (#s = :sending AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":pk": partition(self.tenant),
                ":pending": Status.PENDING.value,
                ":sending": Status.SENDING.value,
                ":now": int(self.clock()),
            },
            ConsistentRead=True,
        )
        due: list[dict[str, Any]] = []
        for page in query:
            due.extend(_as_delivery(json.loads(item["match"])) for item in page["Items"])
            if len(due) >= limit:
                return due[:limit]
        return due


def _as_delivery(match: dict[str, Any]) -> dict[str, Any]:
    """A stored match is one delivery, whatever the tenant's channels are now: one stored before
    channels existed (or without channel settings) was its webhook delivery, and must be retried as
    that, under its own id (expanded into channels, its entry would never be claimed again and stay
    due for ever)."""
    if "delivery" not in match:
        match["delivery"] = {"channel": "webhook", "audience": "person", "notification_id": match.get("notification_id")}
    return match


def due_tenants(table: Table, now: int) -> set[str]:
    """Every tenant with work due now (the sweep's question), from the sparse index: only unfinished
    work is in it (notifications here, and each tenant's unfinished re-run of a new rule set,
    ``handlers.reevaluation``: partition ``<kind>#<tenant>``), so this reads no finished work."""
    tenants: set[str] = set()
    for shard in range(DUE_SHARDS):
        for page in pages(
            table,
            IndexName=DUE_INDEX,
            KeyConditionExpression="due_shard = :shard AND due_at <= :now",
            ExpressionAttributeValues={":shard": f"due#{shard}", ":now": now},
        ):
            tenants.update(item["pk"].partition("#")[2] for item in page["Items"])
    return tenants
