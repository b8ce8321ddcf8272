"""Stage 3, pure core: a match -> the coaching notification we deliver, rendered and signed.

Templates are data written by tenants, so they are rendered by plain substitution of ``{name}``
placeholders from a fixed set (``{user}``, ``{rule}``, ``{title}``, ``{event.<key>}`` of the event
summary), never with ``str.format`` (which would let a template reach object attributes).

The webhook body is signed with the tenant's secret twice over (``headers``): by the Standard
Webhooks scheme (https://www.standardwebhooks.com: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``), so receivers can use
the existing verifiers with the secret ``whsec_`` + base64(the tenant's secret); and, as before,
``X-Coachflow-Signature: sha256=<hex>``, HMAC-SHA256 over ``<timestamp>.<body>`` with the timestamp
in ``X-Coachflow-Timestamp``. Both carry the timestamp so that a receiver can reject replays, and
the notification id (``webhook-id``, ``X-Coachflow-Notification-Id``) for it to deduplicate on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any, Callable

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_]+)*)\}")
DEFAULT_TEMPLATE = "Hi {user}, {title}: a security tool reported this on {event.time_dt}. Here is how to stay safe."


def notification_id(tenant: str, rule_id: str, event_uid: str) -> str:
    """The same match (tenant, rule, event) always gets the same id: the idempotency key of its
    delivery (the ledger's sort key) and the id receivers deduplicate on."""
    return hashlib.sha256(f"{tenant}\x00{rule_id}\x00{event_uid}".encode()).hexdigest()[:32]


def _product(event: dict[str, Any]) -> dict[str, Any]:
    product: dict[str, Any] = (event.get("metadata") or {}).get("product", {})
    return product


# The few event fields a notification shows (the full event stays in the pipeline): the summary's
# keys, and so the only fields a template can name as {event.<key>}.
_SUMMARY: dict[str, Callable[[dict[str, Any]], Any]] = {
    "uid": lambda e: e.get("uid"),
    "time_dt": lambda e: e.get("time_dt"),
    "class_name": lambda e: e.get("class_name"),
    "activity_name": lambda e: e.get("activity_name"),
    "severity": lambda e: e.get("severity"),
    "disposition": lambda e: e.get("disposition"),
    "message": lambda e: (e.get("message") or "")[:200] or None,
    "product": lambda e: _product(e).get("name"),
    "vendor": lambda e: _product(e).get("vendor_name"),
    "url": lambda e: (e.get("url") or {}).get("url_string") or (e.get("url") or {}).get("hostname"),
    "app_name": lambda e: e.get("app_name"),
    "finding": lambda e: (e.get("finding_info") or {}).get("title"),
    "device": lambda e: (e.get("device") or {}).get("hostname"),
    "file": lambda e: (e.get("file") or {}).get("name"),
}
# Every placeholder a template may use. ``render`` fills exactly these and leaves any other ``{...}``
# as written; ``rules validate`` refuses any other (cli/checks.py), so the two agree.
PLACEHOLDERS = frozenset({"user", "rule", "title", *(f"event.{key}" for key in _SUMMARY)})


def event_summary(event: dict[str, Any]) -> dict[str, Any]:
    """The event fields a notification shows, those the event has."""
    pick = {key: read(event) for key, read in _SUMMARY.items()}
    return {k: v for k, v in pick.items() if v is not None}


def render(template: str | None, match: dict[str, Any], escape: Callable[[str], str] = str) -> str:
    """Plain substitution of ``PLACEHOLDERS``, each value passed through ``escape`` (a channel's
    escaping: the values come from events, which an attacker can shape; the template's own text is
    the tenant's); total: any template renders, nothing raises."""
    user = match.get("user") or {}
    names = {
        "user": user.get("name") or user.get("email_addr") or "there",
        "rule": match.get("rule_id", ""),
        "title": match.get("title", ""),
    }
    summary = match.get("event") or {}

    def lookup(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in PLACEHOLDERS:
            return m.group(0)
        if name.startswith("event."):
            value = summary.get(name.removeprefix("event."))
            return "" if value is None else escape(str(value))
        return escape(str(names[name]))

    return _PLACEHOLDER.sub(lookup, template or DEFAULT_TEMPLATE)


def notification(tenant: str, match: dict[str, Any]) -> dict[str, Any]:
    """The webhook body for one match: who to coach, why, and what to do."""
    actions = []
    for action in match.get("actions") or [{"type": "notify"}]:
        rendered = {k: v for k, v in action.items() if k != "template"}
        rendered["message"] = render(action.get("template"), match)
        actions.append(rendered)
    return {
        "notification_id": match["notification_id"],
        "tenant_id": tenant,
        "rule_id": match["rule_id"],
        "title": match.get("title"),
        "severity": match.get("severity"),
        "user": match.get("user") or {},
        "event": match.get("event") or {},
        "actions": actions,
        # the rung of the tenant's escalation ladder, when it has one: {"level", "count"}
        **({"escalation": match["escalation"]} if match.get("escalation") else {}),
    }


def headers(secret: str, notification: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed POST of ``body`` (its notification id, the time it is sent)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "coachflow",
        "webhook-id": notification,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secret, notification, timestamp, body),
        "X-Coachflow-Notification-Id": notification,  # receivers deduplicate on it
        "X-Coachflow-Timestamp": str(timestamp),
        "X-Coachflow-Signature": sign(secret, timestamp, body),
    }


def standard_signature(secret: str, notification: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks' ``v1`` signature: the key is the secret's UTF-8 bytes."""
    mac = hmac.new(secret.encode("utf-8"), f"{notification}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
