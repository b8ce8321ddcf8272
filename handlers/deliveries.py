"""A match's deliveries, pure core: one per channel and audience, each with its own id.

Each delivery has its own id (the match's notification id, plus the channel) and so its own entry
in the delivery ledger: a retry re-attempts only the channels still undelivered, and one channel
failing never re-sends another. The channels themselves, and the tenant's settings for them, are
``handlers.channels``; this module needs no pydantic, so that TriggerNotifications' cold start
does not pay for it unless a tenant has channel settings.
"""

from __future__ import annotations

import re
from typing import Any

# The fields of each channel's secret (a JSON object); at least one of each inner tuple.
SECRET_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "slack": (("webhook_url", "bot_token"),),
    "teams": (("webhook_url",),),
    "learning": (("url",), ("token",)),
}
# A person's address as the event gives it: one @, a dotted domain, nothing that could end a header.
EMAIL = re.compile(r"\A[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+\Z")


def delivery_id(notification: str, channel: str, audience: str = "person") -> str:
    """The id of one delivery of a notification: its ledger key, and the id its receiver sees. The
    webhook keeps the notification's own id (what receivers have always deduplicated on)."""
    if channel == "webhook":
        return notification
    return f"{notification}-{channel}" + ("" if audience == "person" else f"-{audience}")


def deliveries(match: dict[str, Any], channels: Any) -> list[dict[str, Any]]:
    """The deliveries of one match by the tenant's channel settings (``handlers.channels.Channels``,
    or None): each the match itself, with ``notification_id`` its delivery id and
    ``delivery: {channel, audience, notification_id[, to][, training_id]}``.

    - ``notify`` and ``assign_training`` actions: a message to the person on each of the action's
      ``channels`` (else the tenant's ``default``), once per channel whatever the number of actions;
    - ``assign_training`` with a course, when the tenant has a learning platform: the assignment;
    - ``escalate``: an email to its ``escalate_to`` when that is an address and the tenant has email;
      else the webhook carries it (the whole notification names it), when the tenant uses the
      webhook for this match; when nothing does, a delivery that fails with that reason (so the
      escalation is dead-lettered, visibly, instead of dropped).

    A match that is already one delivery (a retry from the ledger) is returned as it is; without
    channel settings a match is the one webhook delivery it always was."""
    if "delivery" in match or channels is None:
        return [match]
    notification = match["notification_id"]
    planned: dict[str, dict[str, Any]] = {}

    def add(channel: str, audience: str = "person", **extra: Any) -> None:
        key = delivery_id(notification, channel, audience)
        if key not in planned:
            planned[key] = {
                **match,
                "notification_id": key,
                "delivery": {"channel": channel, "audience": audience, "notification_id": notification, **extra},
            }

    actions = match.get("actions") or [{"type": "notify"}]
    for action in actions:
        kind = action.get("type", "notify")
        if kind in ("notify", "assign_training"):
            for channel in action.get("channels") or channels.default:
                add(channel)
        if kind == "assign_training" and action.get("training_id") and channels.learning is not None:
            add("learning", training_id=action["training_id"])
    reached = {d["delivery"]["channel"] for d in planned.values()}
    for action in actions:
        if action.get("type") != "escalate":
            continue
        target = str(action.get("escalate_to") or "")
        wanted = action.get("channels") or channels.default
        if "webhook" in wanted:
            add("webhook")
        if EMAIL.match(target) and channels.email is not None:
            add("email", "manager", to=target)
        elif "webhook" not in wanted and "webhook" not in reached:
            add("none", "manager", to=target or None)
    return list(planned.values())
