"""The stateful layer after pattern matching: thresholds, suppression, shadow records.

All state lives in the DynamoDB state table and expires through TTL. Every decision is made with a
conditional write, so concurrent executions never both fire, and every decision is *replayable*: a
redelivered event is counted once, and re-evaluating the event that fired fires again (the
notification id is the same, and delivery is idempotent), so a retry never loses a notification.

Threshold windows close by themselves: a counted event is alive until ``keep_seconds`` (at least a
day, and at least the recent-events buffer's retention, so a re-evaluation re-running buffered
events still finds what they counted) after its window ended or after it was counted, whichever is
later; then its window is closed. Counting reads only live items (``expires_at`` in the future),
so a late event can never revive a closed window, and no decision depends on when DynamoDB's TTL
actually deletes an item (it can lag by days): TTL only reclaims the space, for free, and no query
ever reads more than one window of one key. The marker lives as long as the longest-lived item of
its key, so counting never restarts before the event that fired while that event is alive.

Keys (the coaching key, usually an email address, is stored hashed):
- ``thr#<tenant>#<rule>#<key>`` / ``e#<event ms>#<uid>``: one item per counted event;
- ``thr#<tenant>#<rule>#<key>`` / ``marker``: the last event that fired (counting restarts after it);
- ``sup#<tenant>#<rule>`` / ``<key>``: suppressed until, and the event that fired;
- ``shadow#<tenant>`` / ``<rule>#<uid>``: what a shadow rule would have done.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from handlers.dynamo import Table, conditional, pages, record_and_move_marker
from handlers.rules.evaluate import Decision
from handlers.rules.model import Rule

SHADOW_RETENTION = 30 * 86400
KEEP_SECONDS = 86400  # at least: how long a counted event outlives its window (or its counting)
MAX_RACES = 8  # re-reads when concurrent evaluations of the same key keep winning


def value_at(event: dict[str, Any], path: str) -> Any:
    """The value a threshold or suppression is keyed on.

    A path naming a person object (the default, ``user``) gives that person's identity: the email
    address when the source has one, else the user id, else domain and name."""
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if isinstance(node, list):
        node = node[0] if node else None
    if isinstance(node, dict):
        identity = node.get("email_addr") or node.get("uid")
        if not identity and node.get("name"):
            identity = f"{node.get('domain') or ''}/{node['name']}"
        return identity or None
    return node if isinstance(node, (str, int, float)) and not isinstance(node, bool) else None


def key_hash(value: Any) -> str:
    return hashlib.sha256(str(value).lower().encode("utf-8")).hexdigest()[:24]


class RuleState:
    def __init__(self, table: Table, tenant: str, clock: Callable[[], float] = time.time, keep_seconds: int = KEEP_SECONDS) -> None:
        self.table = table
        self.tenant = tenant
        self.clock = clock
        self.keep_seconds = max(KEEP_SECONDS, keep_seconds)

    def decide(self, rule: Rule, event: dict[str, Any]) -> Decision:
        if rule.threshold is not None:
            key = value_at(event, rule.threshold.key)
            if key is None:
                return "no_key"
            if not self._threshold_reached(rule, key, event):
                return "below_threshold"
        if rule.suppress is not None:
            key = value_at(event, rule.suppress.key)
            if key is None:
                return "no_key"
            if not self._claim_quiet_period(rule, key, event["uid"]):
                return "suppressed"
        if rule.mode == "shadow":
            self._record_shadow(rule, event)
            return "shadow"
        return "notify"

    # -- thresholds ----------------------------------------------------------------------------------

    def _threshold_reached(self, rule: Rule, key: Any, event: dict[str, Any]) -> bool:
        """Whether this event is the one that crosses the threshold for this key.

        Each event is recorded in the same transaction that moves the key's marker on (its version,
        and the event that fired when this one crosses), on the condition that the marker is still
        what was read. A concurrent evaluation of the same key therefore either commits first, and
        this one re-reads and counts again, or fails and does the same: two executions never both
        fire, and a crash can never record the event without its decision. Replaying a recorded
        event replays its decision."""
        assert rule.threshold is not None
        pk = f"thr#{self.tenant}#{rule.rule_id}#{key_hash(key)}"
        at = int(event["time"])
        sk = f"e#{at:013d}#{event['uid']}"
        now = int(self.clock())
        expires = int(max(at / 1000 + rule.threshold.window, now) + self.keep_seconds)
        for _ in range(MAX_RACES):
            marker = self.table.get_item(Key={"pk": pk, "sk": "marker"}, ConsistentRead=True).get("Item") or {}
            fired, version = str(marker.get("fired_sk", "")), int(marker.get("version", 0))
            if self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item"):
                return fired == sk  # recorded already (a redelivery, a re-evaluation): replay the decision it got
            before = self._counted_before(pk, sk, at, rule.threshold.window, fired, enough=rule.threshold.count - 1, now=now)
            crossing = before + 1 >= rule.threshold.count
            moved = "SET version = :next, expires_at = :exp" + (", fired_sk = :sk" if crossing else "")
            # the marker outlives every item of its key (a late event's item may expire before an earlier one's)
            values: dict[str, Any] = {":exp": max(expires, int(marker.get("expires_at", 0))), **({":sk": sk} if crossing else {})}
            committed = record_and_move_marker(self.table, {"pk": pk, "sk": sk, "expires_at": expires}, version, moved, values)
            if committed:
                return crossing
        raise RuntimeError(f"threshold of rule {rule.rule_id}: {MAX_RACES} concurrent writers in a row; the evaluation will be retried")

    def _counted_before(self, pk: str, sk: str, at: int, window: int, fired: str, enough: int, now: int) -> int:
        """Live events of this key in the window before this one, after the last one that fired
        (counting stops at ``enough``); those of closed windows are ignored, deleted by TTL or not."""
        low = max(f"e#{max(0, at - window * 1000):013d}#", fired + "\x00" if fired else "")
        if low > sk:
            return 0  # a late event, older than the last crossing: its window has fired already
        counted = 0
        for page in pages(
            self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={":pk": pk, ":low": low, ":high": sk, ":now": now},
            Select="COUNT",
            ConsistentRead=True,
        ):
            counted += page["Count"]
            if counted >= enough:
                break
        return counted

    # -- suppression ---------------------------------------------------------------------------------

    def _claim_quiet_period(self, rule: Rule, key: Any, uid: str) -> bool:
        assert rule.suppress is not None
        now = int(self.clock())
        item_key = {"pk": f"sup#{self.tenant}#{rule.rule_id}", "sk": key_hash(key)}
        claimed = conditional(
            self.table.put_item,
            Item={
                **item_key,
                "until": now + rule.suppress.duration,
                "fired_by": uid,
                "expires_at": now + rule.suppress.duration + 86400,
            },  # fmt: skip
            ConditionExpression="attribute_not_exists(pk) OR #until <= :now OR fired_by = :uid",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":now": now, ":uid": uid},
        )
        return claimed is not None

    # -- shadow ------------------------------------------------------------------------------------

    def _record_shadow(self, rule: Rule, event: dict[str, Any]) -> None:
        self.table.put_item(
            Item={
                "pk": f"shadow#{self.tenant}",
                "sk": f"{rule.rule_id}#{event['uid']}",
                "decision": "would_notify",
                "event_time": int(event["time"]),
                "recorded_at": int(self.clock()),
                "expires_at": int(self.clock()) + SHADOW_RETENTION,
            }
        )
