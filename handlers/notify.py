"""Stage 3, pure core: a match -> the coaching notification we deliver, rendered and signed.

Templates are data written by tenants, so they are rendered by plain substitution of ``{name}``
placeholders from a fixed set (``{user}``, ``{rule}``, ``{title}``, ``{event.<path>}``), never with
``str.format`` (which would let a template reach object attributes).

The webhook body is signed with the tenant's secret: ``X-Coachflow-Signature: sha256=<hex>`` is
HMAC-SHA256 over ``<timestamp>.<body>``, with the timestamp in ``X-Coachflow-Timestamp`` so that a
receiver can reject replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_]+)*)\}")
DEFAULT_TEMPLATE = "Hi {user}, {title}: a security tool reported this on {event.time_dt}. Here is how to stay safe."


def notification_id(tenant: str, rule_id: str, event_uid: str) -> str:
    """The same match (tenant, rule, event) always gets the same id: the idempotency key of its
    delivery (the ledger's sort key) and the id receivers deduplicate on."""
    return hashlib.sha256(f"{tenant}\x00{rule_id}\x00{event_uid}".encode()).hexdigest()[:32]


def event_summary(event: dict[str, Any]) -> dict[str, Any]:
    """The few event fields a notification shows (the full event stays in the pipeline)."""
    pick = {
        "uid": event.get("uid"),
        "time_dt": event.get("time_dt"),
        "class_name": event.get("class_name"),
        "activity_name": event.get("activity_name"),
        "severity": event.get("severity"),
        "disposition": event.get("disposition"),
        "message": (event.get("message") or "")[:200] or None,
        "product": (event.get("metadata") or {}).get("product", {}).get("name"),
        "vendor": (event.get("metadata") or {}).get("product", {}).get("vendor_name"),
        "url": (event.get("url") or {}).get("url_string") or (event.get("url") or {}).get("hostname"),
        "app_name": event.get("app_name"),
        "finding": (event.get("finding_info") or {}).get("title"),
        "device": (event.get("device") or {}).get("hostname"),
        "file": (event.get("file") or {}).get("name"),
    }
    return {k: v for k, v in pick.items() if v is not None}


def render(template: str | None, match: dict[str, Any]) -> str:
    user = match.get("user") or {}
    names = {
        "user": user.get("name") or user.get("email_addr") or "there",
        "rule": match.get("rule_id", ""),
        "title": match.get("title", ""),
    }

    def lookup(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("event."):
            value = (match.get("event") or {}).get(name.split(".", 1)[1])
            return "" if value is None else str(value)
        return str(names.get(name, m.group(0)))

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
    }


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
