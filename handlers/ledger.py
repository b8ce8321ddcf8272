"""The notification ledger: one item per notification in the state table, so that each is delivered
once, whatever retries, redeliveries and concurrent re-evaluations happen.

Life of a notification (``Status``)::

    (none) --claim--> SENDING --delivered--> DELIVERED
             defer    |   \\--failed------> PENDING --claim--> SENDING ...
               \\      \\-- lease expires (the function died) --> claimable again
                \\--> PENDING

- ``claim`` takes a short lease with a conditional write: only one deliverer at a time, never one
  that is delivered already. Every claim counts an attempt.
- ``failed`` and ``defer`` leave it PENDING with the match, so re-evaluation can retry it;
  ``pending`` lists what re-evaluation retries (PENDING, or SENDING with an expired lease) until
  ``MAX_ATTEMPTS`` attempts were made.
- Items expire through TTL ``RETENTION_SECONDS`` after their last write.

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

LEASE_SECONDS = 120
RETENTION_SECONDS = 14 * 86400
MAX_ATTEMPTS = 10


class Status(StrEnum):
    PENDING = "pending"  # waiting for a (re)try: failed, deferred, or never claimed
    SENDING = "sending"  # claimed: a deliverer holds the lease
    DELIVERED = "delivered"


def partition(tenant: str) -> str:
    """The state-table partition holding a tenant's notifications (sort key: notification id)."""
    return f"notif#{tenant}"


def _compact(match: dict[str, Any]) -> str:
    return json.dumps(match, separators=(",", ":"))


class Ledger:
    """One tenant's notifications in the state table."""

    def __init__(self, table: Table, tenant: str, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.tenant = tenant
        self.clock = clock

    def _key(self, notification: str) -> dict[str, str]:
        return {"pk": partition(self.tenant), "sk": notification}

    def claim(self, match: dict[str, Any]) -> bool:
        """Take the delivery lease; False when it was delivered already or someone else holds it."""
        now = int(self.clock())
        return conditional(
            self.table.update_item,
            Key=self._key(match["notification_id"]),
            UpdateExpression="SET #s = :sending, lease_until = :lease, #m = if_not_exists(#m, :match), "
            "attempts = if_not_exists(attempts, :zero) + :one, expires_at = :exp",
            ConditionExpression="attribute_not_exists(pk) OR #s = :pending OR (#s = :sending AND lease_until < :now)",
            ExpressionAttributeNames={"#s": "status", "#m": "match"},
            ExpressionAttributeValues={
                ":sending": Status.SENDING.value,
                ":pending": Status.PENDING.value,
                ":lease": now + LEASE_SECONDS,
                ":now": now,
                ":match": _compact(match),
                ":zero": 0,
                ":one": 1,
                ":exp": now + RETENTION_SECONDS,
            },
        )

    def defer(self, match: dict[str, Any], why: str) -> bool:
        """Record a notification as pending without trying it (no time left); False if it was
        claimed or delivered already."""
        now = int(self.clock())
        return conditional(
            self.table.update_item,
            Key=self._key(match["notification_id"]),
            UpdateExpression="SET #s = :pending, #m = if_not_exists(#m, :match), attempts = if_not_exists(attempts, :zero), "
            "expires_at = :exp, detail = :why",
            ConditionExpression="attribute_not_exists(pk) OR #s = :pending",
            ExpressionAttributeNames={"#s": "status", "#m": "match"},
            ExpressionAttributeValues={
                ":pending": Status.PENDING.value,
                ":match": _compact(match),
                ":zero": 0,
                ":exp": now + RETENTION_SECONDS,
                ":why": why[:500],
            },
        )

    def delivered(self, notification: str, detail: str) -> None:
        self._finish(notification, Status.DELIVERED, detail)

    def failed(self, notification: str, detail: str) -> None:
        """Delivery failed: pending again, for re-evaluation to retry."""
        self._finish(notification, Status.PENDING, detail)

    def _finish(self, notification: str, status: Status, detail: str) -> None:
        self.table.update_item(
            Key=self._key(notification),
            UpdateExpression="SET #s = :s, detail = :d, finished_at = :t REMOVE lease_until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status.value, ":d": detail[:500], ":t": int(self.clock())},
        )

    def pending(self) -> list[dict[str, Any]]:
        """The matches to retry: failed or deferred ones, and ones whose delivery lease expired (the
        function delivering them died), while they have attempts left."""
        query = pages(
            self.table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="(#s = :pending OR (#s = :sending AND lease_until < :now)) AND attempts < :max",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":pk": partition(self.tenant),
                ":pending": Status.PENDING.value,
                ":sending": Status.SENDING.value,
                ":now": int(self.clock()),
                ":max": MAX_ATTEMPTS,
            },
            ConsistentRead=True,
        )
        return [json.loads(item["match"]) for page in query for item in page["Items"]]
