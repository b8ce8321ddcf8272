"""A tenant's settings: the item ``#tenant`` in the rules table, beside the tenant's rules.

It holds where the tenant's notifications go (``webhook_url``), which rule set is current
(``ruleset_version``, written last by a rules push, so a reader that sees a version sees its
rules), and who may speak for the tenant (``producers``: the SQS sender ids of its integrations;
normalize rejects a record any other sender attributes to the tenant), and how its people are
coached beyond each rule (``coaching``: the escalation ladder and the frequency cap,
``handlers.coaching``), and on which channels with which templates (``channels``,
``handlers.channels``; their credentials are in Secrets Manager, never here). CheckEventsForRuleMatch reads the version to know when its cached rules are
stale, and the coaching settings; TriggerNotifications the webhook and the channels, normalize
the producers.
Nothing else reads or writes this item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers.dynamo import Table

if TYPE_CHECKING:
    from handlers.channels import Channels
    from handlers.coaching import Coaching

SORT_KEY = "#tenant"  # the rules table's sort key is rule_id; no rule id can start with '#'
NO_RULES = "none"  # the version of a tenant that never pushed rules


@dataclass(frozen=True)
class TenantSettings:
    tenant: str
    ruleset_version: str = NO_RULES
    rule_count: int = 0
    webhook_url: str | None = None
    producers: tuple[str, ...] = ()  # SQS sender ids, exact or ending in '*' (every session of a role)
    coaching_item: Any = field(default=None, compare=False)  # as stored: read it through coaching()
    channels_item: Any = field(default=None, compare=False)  # as stored: read it through channels()

    def allows(self, sender: str | None) -> bool:
        """Whether a message sent by ``sender`` (its SQS ``SenderId``) may speak for this tenant."""
        if not sender:
            return False
        return any(sender == p or (p.endswith("*") and sender.startswith(p[:-1])) for p in self.producers)

    def coaching(self) -> Coaching:
        """The escalation ladder and frequency cap (empty: every match a tip, no cap). Validated when
        set; settings edited by hand into invalid ones raise ``CoachingError`` here, naming why (only
        CheckEventsForRuleMatch asks: normalize never fails for them)."""
        from handlers.coaching import parse  # pydantic: a cold start TriggerNotifications need not pay

        return parse(self.coaching_item)

    def channels(self) -> Channels | None:
        """The channel settings, or None: every match is one webhook delivery, as before channels
        existed. Validated when set; settings edited by hand into invalid ones raise
        ``ChannelsError`` here, naming why (in this tenant's executions only)."""
        if self.channels_item is None:
            return None
        from handlers.channels import parse  # pydantic: only tenants with channel settings pay its import

        return parse(self.channels_item)


def read(table: Table, tenant: str) -> TenantSettings:
    item: dict[str, Any] = table.get_item(Key={"tenant_id": tenant, "rule_id": SORT_KEY}, ConsistentRead=True).get("Item") or {}
    return TenantSettings(
        tenant=tenant,
        ruleset_version=str(item.get("ruleset_version", NO_RULES)),
        rule_count=int(item.get("rule_count", 0)),
        webhook_url=str(item["webhook_url"]) if item.get("webhook_url") else None,
        producers=tuple(sorted(str(p) for p in item.get("producers") or ())),
        coaching_item=item.get("coaching"),
        channels_item=item.get("channels"),
    )


def write(table: Table, tenant: str, ruleset_version: str, rule_count: int, webhook_url: str | None = None) -> None:
    """Record a new rule set (and, when given, a new webhook URL); the webhook is kept otherwise."""
    names = {"#v": "ruleset_version", "#u": "updated_at", "#n": "rule_count"}
    values: dict[str, Any] = {":v": ruleset_version, ":u": int(time.time()), ":n": rule_count}
    update = "SET #v = :v, #u = :u, #n = :n"
    if webhook_url is not None:
        names["#w"], values[":w"] = "webhook_url", webhook_url
        update += ", #w = :w"
    table.update_item(
        Key={"tenant_id": tenant, "rule_id": SORT_KEY},
        UpdateExpression=update,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def update(
    table: Table,
    tenant: str,
    webhook_url: str | None = None,
    producers: list[str] | None = None,
    coaching: Coaching | None = None,
    channels: Channels | None = None,
) -> None:
    """Set the webhook URL, the registered producers (a new list replaces the old one), the
    coaching settings (new ones replace the old ones; empty ones remove them) and/or the channel
    settings (new ones replace the old ones)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    assignments = []
    removals = []
    if webhook_url is not None:
        names["#w"], values[":w"] = "webhook_url", webhook_url
        assignments.append("#w = :w")
    if producers is not None:
        names["#p"], values[":p"] = "producers", sorted(set(producers))
        assignments.append("#p = :p")
    if coaching is not None:
        names["#c"] = "coaching"
        if coaching.enabled:
            values[":c"] = coaching.stored()
            assignments.append("#c = :c")
        else:
            removals.append("#c")
    if channels is not None:
        names["#ch"], values[":ch"] = "channels", channels.stored()
        assignments.append("#ch = :ch")
    if not assignments and not removals:
        return
    table.update_item(
        Key={"tenant_id": tenant, "rule_id": SORT_KEY},
        UpdateExpression=" ".join(f"{verb} {', '.join(parts)}" for verb, parts in (("SET", assignments), ("REMOVE", removals)) if parts),
        ExpressionAttributeNames=names,
        **({"ExpressionAttributeValues": values} if values else {}),
    )
