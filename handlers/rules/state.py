"""The stateful layer after pattern matching: thresholds, suppression, shadow records.

All state lives in the DynamoDB state table and expires through TTL. Every decision is made with a
conditional write, so concurrent executions never both fire, and every decision is *replayable*: a
redelivered event is counted once, and re-evaluating the event that fired fires again (the
notification id is the same, and delivery is idempotent), so a retry never loses a notification.

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

from handlers.dynamo import Table, conditional, pages
from handlers.rules.evaluate import Decision
from handlers.rules.model import Rule

SHADOW_RETENTION = 30 * 86400


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
    def __init__(self, table: Table, tenant: str, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.tenant = tenant
        self.clock = clock

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
        assert rule.threshold is not None
        pk = f"thr#{self.tenant}#{rule.rule_id}#{key_hash(key)}"
        at = int(event["time"])
        sk = f"e#{at:013d}#{event['uid']}"
        window_ms = rule.threshold.window * 1000
        new = conditional(
            self.table.put_item,
            Item={"pk": pk, "sk": sk, "expires_at": int(at / 1000 + rule.threshold.window + 86400)},
            ConditionExpression="attribute_not_exists(pk)",
        )
        marker = self.table.get_item(Key={"pk": pk, "sk": "marker"}, ConsistentRead=True).get("Item") or {}
        fired = str(marker.get("fired_sk", ""))
        if not new:
            return fired == sk  # a redelivered event: replay the decision it got, never recount it
        low = max(f"e#{max(0, at - window_ms):013d}#", fired + "\x00" if fired else "")
        counted = 0
        window = pages(
            self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={":pk": pk, ":low": low, ":high": sk},
            Select="COUNT",
            ConsistentRead=True,
        )
        for page in window:
            counted += page["Count"]
            if counted >= rule.threshold.count:
                break
        if counted < rule.threshold.count:
            return False
        # False when a concurrent execution fired on a later event of the same window.
        return conditional(
            self.table.put_item,
            Item={"pk": pk, "sk": "marker", "fired_sk": sk, "expires_at": int(at / 1000 + rule.threshold.window + 86400)},
            ConditionExpression="attribute_not_exists(fired_sk) OR fired_sk < :sk",
            ExpressionAttributeValues={":sk": sk},
        )

    # -- suppression ---------------------------------------------------------------------------------

    def _claim_quiet_period(self, rule: Rule, key: Any, uid: str) -> bool:
        assert rule.suppress is not None
        now = int(self.clock())
        item_key = {"pk": f"sup#{self.tenant}#{rule.rule_id}", "sk": key_hash(key)}
        return conditional(
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
