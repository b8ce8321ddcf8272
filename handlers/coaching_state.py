"""The state behind a tenant's escalation ladder and frequency cap (``handlers.coaching``), in the
state table: what each person was sent, decided once per match, whatever retries, redeliveries and
concurrent evaluations happen.

Keys (partition per person; the coaching key, usually an email address, is stored hashed):

- ``coach#<tenant>#<key>`` / ``n#<event ms>#<notification id>``: a match notified to the person,
  with its ``level`` and ``count``;
- ``coach#<tenant>#<key>`` / ``c#<event ms>#<notification id>``: a match over the cap;
- ``coach#<tenant>#<key>`` / ``marker``: the person's version, moved on by every decision.

Every decision is one transaction: the match's item (on the condition that it does not exist) and
the marker (on the condition that its version is still what was read). Of two evaluations deciding
for one person at once, one commits; the other re-reads (seeing the first's match) and decides
again, so two matches can never both take the last slot under the cap, nor the same rung. A match
already recorded (a retry, a redelivered batch) returns what it got the first time, and is never
counted twice: its key is derived from the match (its notification id, ``notify.notification_id``,
and its event's time).

Windows are measured in event time, like thresholds'. Items expire through TTL once no window can
reach them and no retry can replay them (``REPLAY_SECONDS``: longer than an execution can be
redriven, 14 days).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handlers.coaching import Coaching, Verdict, over_cap
from handlers.dynamo import Table, pages, record_and_move_marker
from handlers.notify import notification_id
from handlers.rules.model import Rule
from handlers.rules.state import MAX_RACES, key_hash, value_at

COACHING_KEY = "user"  # the coached person: email address, else user id, else domain and name
REPLAY_SECONDS = 15 * 86400
MAX_COUNTED = 10_000  # a repeat count stops here (a person notified this often in one window)


class CoachingState:
    def __init__(self, table: Table, tenant: str, settings: Coaching, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.tenant = tenant
        self.settings = settings
        self.clock = clock

    def decide(self, rule: Rule, event: dict[str, Any]) -> Verdict:
        """The decision for a match its rule decided to notify: ``notify`` (at a level, with an
        escalation ladder) or ``capped``."""
        escalation, cap = self.settings.escalation, self.settings.frequency_cap
        if escalation is None and cap is None:
            return Verdict("notify")
        key = value_at(event, COACHING_KEY)
        if key is None:  # nobody to count for (a rule keyed on something else): a first occurrence
            return Verdict("notify", escalation.steps[0].level, 1) if escalation else Verdict("notify")
        pk = f"coach#{self.tenant}#{key_hash(key)}"
        at = int(event["time"])
        match = f"{at:013d}#{notification_id(self.tenant, rule.rule_id, event['uid'])}"
        windows = [s.window for s in (escalation, cap) if s is not None]
        expires = int(max(at / 1000 + max(windows), self.clock() + REPLAY_SECONDS))
        for _ in range(MAX_RACES):
            marker = self.table.get_item(Key={"pk": pk, "sk": "marker"}, ConsistentRead=True).get("Item") or {}
            version = int(marker.get("version", 0))
            recorded = self._recorded(pk, match)
            if recorded is not None:
                return recorded  # decided already (a retry, a redelivery): the same decision again
            if cap is not None and over_cap(self._notified_times(pk, at - cap.window * 1000 + 1, at + cap.window * 1000 - 1), at, cap):
                verdict = Verdict("capped")
            elif escalation is not None:
                count = self._count(pk, at - escalation.window * 1000 + 1, at) + 1
                verdict = Verdict("notify", escalation.level(count), count)
            else:
                verdict = Verdict("notify")
            item: dict[str, Any] = {"pk": pk, "sk": ("n#" if verdict.decision == "notify" else "c#") + match, "expires_at": expires,
                                    "rule_id": rule.rule_id, "decided_at": int(self.clock())}  # fmt: skip
            if verdict.level is not None:
                item.update(level=verdict.level, count=verdict.count)
            moved = {":exp": max(expires, int(marker.get("expires_at", 0)))}
            committed = record_and_move_marker(self.table, item, version, "SET version = :next, expires_at = :exp", moved)
            if committed:
                return verdict
        raise RuntimeError(f"coaching of rule {rule.rule_id}: {MAX_RACES} concurrent writers in a row; the evaluation will be retried")

    def _recorded(self, pk: str, match: str) -> Verdict | None:
        for prefix in ("n#", "c#"):
            item = self.table.get_item(Key={"pk": pk, "sk": prefix + match}, ConsistentRead=True).get("Item")
            if item is None:
                continue
            if prefix == "c#":
                return Verdict("capped")
            level = item.get("level")
            return Verdict("notify", level, int(item.get("count", 0))) if level else Verdict("notify")
        return None

    def _between(self, pk: str, low: int, high: int) -> dict[str, Any]:
        """The query of the person's notified matches whose events are from ``low`` to ``high`` ms."""
        return {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            # "n#<high + 1>#" sorts after every item of `high` ms and before every item of the next
            "ExpressionAttributeValues": {":pk": pk, ":low": f"n#{max(0, low):013d}#", ":high": f"n#{max(0, high + 1):013d}#"},
            "ConsistentRead": True,
        }

    def _notified_times(self, pk: str, low: int, high: int) -> list[int]:
        return [
            int(item["sk"].split("#")[1])
            for page in pages(self.table, ProjectionExpression="sk", **self._between(pk, low, high))
            for item in page["Items"]
        ]

    def _count(self, pk: str, low: int, high: int) -> int:
        counted = 0
        for page in pages(self.table, Select="COUNT", **self._between(pk, low, high)):
            counted += page["Count"]
            if counted >= MAX_COUNTED:
                return MAX_COUNTED
        return counted
