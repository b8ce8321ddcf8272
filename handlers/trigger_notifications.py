"""Lambda ``TriggerNotifications``: deliver one coaching notification per match, exactly once.

Each notification is claimed in the state table with a conditional write (a short lease), so that
a Step Functions retry, a redelivered batch or a concurrent re-evaluation never delivers it twice;
then it is POSTed, signed, to the tenant's webhook. A failed delivery is recorded as ``pending``
(with the match, so the tenant's re-evaluation schedule retries it). When nothing could be
delivered the function raises ``AllNotificationsFailedException``, which the state machine routes
to its ``NotificationsFailed`` state. When the function's deadline nears, the notifications left are
recorded as pending (deferred) for the re-evaluation schedule instead of being cut off mid-flight.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers import aws, notify
from handlers.dynamo import conditional
from handlers.tenancy import tenant_of

logger = Logger()
metrics = Metrics()
LEASE_SECONDS = 120
DELIVERED_RETENTION = 14 * 86400
SECRET_TTL = 300
DEADLINE_MARGIN_SECONDS = 5
_secrets: dict[str, tuple[float, str]] = {}


class AllNotificationsFailedException(Exception):
    """No notification of the batch could be delivered (the state machine catches this name)."""


class DeliveryError(Exception):
    pass


def _state() -> Any:
    return aws.resource("dynamodb").Table(aws.setting("STATE_TABLE"))


def _settings(tenant: str) -> dict[str, Any]:
    table = aws.resource("dynamodb").Table(aws.setting("RULES_TABLE"))
    return table.get_item(Key={"tenant_id": tenant, "rule_id": "#tenant"}).get("Item") or {}


def _secret(tenant: str) -> str:
    cached = _secrets.get(tenant)
    if cached and cached[0] > time.time():
        return cached[1]
    name = aws.setting("WEBHOOK_SECRET_PREFIX") + tenant
    value = aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    _secrets[tenant] = (time.time() + SECRET_TTL, value)
    return value


def _check_url(url: str) -> None:
    allow_http = aws.setting("ALLOW_HTTP_WEBHOOKS", "false") == "true"
    if not (url.startswith("https://") or (allow_http and url.startswith("http://"))):
        raise DeliveryError(f"webhook URL must use https: {url[:80]}")


def _post(url: str, body: bytes, secret: str) -> int:
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "coachflow",
            "X-Coachflow-Timestamp": str(timestamp),
            "X-Coachflow-Signature": notify.sign(secret, timestamp, body),
        },
    )
    timeout = float(aws.setting("WEBHOOK_TIMEOUT_SECONDS", "5"))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"webhook unreachable: {exc}") from None


def _ledger_key(tenant: str, notification_id: str) -> dict[str, str]:
    return {"pk": notify.ledger_partition(tenant), "sk": notification_id}


def _claim(table: Any, tenant: str, match: dict[str, Any]) -> bool:
    """Take the delivery lease; False when it was delivered already or someone else holds it."""
    now = int(time.time())
    return conditional(
        table.update_item,
        Key=_ledger_key(tenant, match["notification_id"]),
        UpdateExpression="SET #s = :sending, lease_until = :lease, #m = if_not_exists(#m, :match), "
        "attempts = if_not_exists(attempts, :zero) + :one, expires_at = :exp",
        ConditionExpression="attribute_not_exists(pk) OR #s = :pending OR (#s = :sending AND lease_until < :now)",
        ExpressionAttributeNames={"#s": "status", "#m": "match"},
        ExpressionAttributeValues={
            ":sending": "sending",
            ":pending": "pending",
            ":lease": now + LEASE_SECONDS,
            ":now": now,
            ":match": json.dumps(match, separators=(",", ":")),
            ":zero": 0,
            ":one": 1,
            ":exp": now + DELIVERED_RETENTION,
        },  # fmt: skip
    )


def _defer(table: Any, tenant: str, match: dict[str, Any]) -> bool:
    """Record a notification as pending without trying it (no time left); False if already done."""
    now = int(time.time())
    return conditional(
        table.update_item,
        Key=_ledger_key(tenant, match["notification_id"]),
        UpdateExpression="SET #s = :pending, #m = if_not_exists(#m, :match), attempts = if_not_exists(attempts, :zero), "
        "expires_at = :exp, detail = :why",
        ConditionExpression="attribute_not_exists(pk) OR #s = :pending",
        ExpressionAttributeNames={"#s": "status", "#m": "match"},
        ExpressionAttributeValues={
            ":pending": "pending",
            ":match": json.dumps(match, separators=(",", ":")),
            ":zero": 0,
            ":exp": now + DELIVERED_RETENTION,
            ":why": "deferred: the function's deadline was near",
        },  # fmt: skip
    )


def _finish(table: Any, tenant: str, notification_id: str, status: str, detail: str) -> None:
    table.update_item(
        Key=_ledger_key(tenant, notification_id),
        UpdateExpression="SET #s = :s, detail = :d, finished_at = :t REMOVE lease_until",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": status, ":d": detail[:500], ":t": int(time.time())},
    )


def _matches(event: dict[str, Any]) -> list[dict[str, Any]]:
    ref = event.get("matches_ref")
    if ref:
        return aws.get_json(ref["bucket"], ref["key"])
    return list(event.get("matches") or [])


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant = tenant_of(event)
    logger.append_keys(tenant_id=tenant, batch_id=event.get("batch_id"))
    matches = _matches(event)
    table = _state()
    settings = _settings(tenant)
    url = str(settings.get("webhook_url") or "")
    delivered, duplicates, failed, deferred, errors = [], [], [], [], []
    # Stop in time: what is left when the deadline nears waits for the tenant's re-evaluation.
    reserve_ms = (float(aws.setting("WEBHOOK_TIMEOUT_SECONDS", "5")) + DEADLINE_MARGIN_SECONDS) * 1000
    for match in matches:
        nid = match["notification_id"]
        if context.get_remaining_time_in_millis() < reserve_ms:
            if _defer(table, tenant, match):
                deferred.append(nid)
            continue
        if not _claim(table, tenant, match):
            duplicates.append(nid)
            continue
        try:
            if not url:
                raise DeliveryError(f"tenant {tenant} has no webhook_url")
            _check_url(url)
            status = _post(url, notify.encode(notify.notification(tenant, match)), _secret(tenant))
            _finish(table, tenant, nid, "delivered", f"HTTP {status}")
            delivered.append(nid)
        except (DeliveryError, ClientError) as exc:
            _finish(table, tenant, nid, "pending", str(exc))
            failed.append(nid)
            errors.append(str(exc))
            logger.warning("notification not delivered", extra={"notification_id": nid, "error": str(exc)})
    metrics.add_metric(name="NotificationsDelivered", unit=MetricUnit.Count, value=len(delivered))
    metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=len(failed))
    metrics.add_metric(name="NotificationsDuplicate", unit=MetricUnit.Count, value=len(duplicates))
    if deferred:
        metrics.add_metric(name="NotificationsDeferred", unit=MetricUnit.Count, value=len(deferred))
    if failed and not delivered and not duplicates and not deferred:
        raise AllNotificationsFailedException(f"none of {len(failed)} notifications for tenant {tenant} was delivered: {errors[0]}")
    result = {"tenant_id": tenant, "batch_id": event.get("batch_id"), "delivered": len(delivered),
              "duplicates": len(duplicates), "failed": len(failed), "deferred": len(deferred),
              "notification_ids": delivered}  # fmt: skip
    logger.info("notifications", extra={k: v for k, v in result.items() if k != "notification_ids"})
    return result
