"""Lambda ``TriggerNotifications``: deliver each match's coaching on its channels, each exactly once.

Each match becomes one delivery per channel (``handlers.deliveries``, ``handlers.channels``: email, Slack, Teams, the
signed webhook, the learning platform; only the webhook for a tenant without channel settings).
Each delivery is claimed in the ledger (``handlers.ledger``: a conditional write taking a short
lease), so that a Step Functions retry, a redelivered batch or a concurrent re-evaluation never
delivers it twice; then it is sent (``handlers.senders``). A failed delivery stays
pending in the ledger, with its match, for the tenant's re-evaluation to retry. When nothing could
be delivered the function raises ``AllNotificationsFailedException``, which the state machine
retries (re-attempting only what is still undelivered) and then routes to its ``Fail`` state. When the function's deadline nears, the notifications
left are deferred (pending) instead of being cut off mid-flight.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers import aws, claim_check, deliveries, tenant_settings, webhook
from handlers.ledger import BACKOFF_SECONDS, LEASE_SECONDS, Ledger
from handlers.senders import PermanentError, Sender
from handlers.task_errors import TaskError, surfaced
from handlers.tenancy import tenant_of
from handlers.tracing import annotate, tracer

logger = Logger()
metrics = Metrics()
metrics.set_default_dimensions(**aws.metric_dimensions())
SECRET_TTL = 300
DEADLINE_MARGIN_SECONDS = 5
RECORD_ATTEMPTS = 4  # writes of a delivery to the ledger before giving up (besides the SDK's own retries)
_secrets: dict[str, tuple[float, str]] = {}


def _shown(exc: Exception) -> str:
    """A failure as AllNotificationsFailedException may quote it: that message reaches the execution's
    history and the function's X-Ray segment, so an AWS error gives its operation and code only
    (SES's message names the refused recipients' addresses); our own messages name an origin or a
    domain, never an address or a URL's path. Logs and the ledger keep the whole message."""
    if isinstance(exc, ClientError):
        return f"{exc.operation_name}: {exc.response.get('Error', {}).get('Code', 'unknown error')}"
    return str(exc)


class AllNotificationsFailedException(TaskError):
    """This attempt delivered none of the batch's notifications (the state machine retries this
    name, re-attempting only what is still undelivered, then catches it into Fail)."""


def _table(setting: str) -> Any:
    return aws.resource("dynamodb").Table(aws.setting(setting))


def _secret(name: str) -> str:
    """A tenant's secret by its name below the tenants' prefix (``acme``: the webhook signing secret,
    ``acme/slack``: a channel's credentials), cached for ``SECRET_TTL`` per warm function."""
    cached = _secrets.get(name)
    if cached and cached[0] > time.time():
        return cached[1]
    value: str = aws.client("secretsmanager").get_secret_value(SecretId=aws.setting("WEBHOOK_SECRET_PREFIX") + name)["SecretString"]
    _secrets[name] = (time.time() + SECRET_TTL, value)
    return value


@functools.cache
def _ses() -> Any:
    """An SES v2 client that makes one attempt within the delivery timeout: the ledger and the state
    machine retry, and a send must not outlive the deadline the other channels keep."""
    import boto3
    from botocore.config import Config

    timeout = float(aws.setting("WEBHOOK_TIMEOUT_SECONDS", "5"))
    config = Config(connect_timeout=min(2.0, timeout / 2), read_timeout=timeout, retries={"total_max_attempts": 1})
    return boto3.client("sesv2", config=config)


@functools.cache
def _policy() -> webhook.Policy:
    """What delivery may reach beyond https to public addresses (local development only: Terraform
    refuses both settings outside the local environment)."""
    return webhook.Policy.from_settings(aws.setting("ALLOW_HTTP_WEBHOOKS", "false"), aws.setting("WEBHOOK_ALLOWED_NETWORKS", ""))


def _deadline(remaining_ms: int) -> float:
    """When one delivery must be over: the webhook timeout, or the invocation's own deadline,
    whichever comes first."""
    budget = min(float(aws.setting("WEBHOOK_TIMEOUT_SECONDS", "5")), remaining_ms / 1000 - DEADLINE_MARGIN_SECONDS)
    return time.monotonic() + budget


def _matches(tenant: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """The matches to deliver: inline, or claim-checked when they did not fit the state output."""
    matches = event.get("matches") or []
    pointer = claim_check.pointer_of(matches)
    if pointer is None:
        return list(matches)
    loaded: list[dict[str, Any]] = json.loads(claim_check.get(aws.claims_bucket(), pointer, claim_check.Kind.MATCHES, tenant))
    return loaded


def _dead_letter(tenant: str, match: dict[str, Any], attempts: int, reason: str) -> None:
    """Hand a notification whose every attempt failed to the dead-notifications queue, with why."""
    text = {"DataType": "String"}
    aws.client("sqs").send_message(
        QueueUrl=aws.setting("DEAD_NOTIFICATIONS_QUEUE_URL"),
        MessageBody=json.dumps({"tenant_id": tenant, "attempts": attempts, "reason": reason, "match": match}, separators=(",", ":")),
        MessageAttributes={
            "tenant_id": {**text, "StringValue": tenant},
            "notification_id": {**text, "StringValue": match["notification_id"]},
            "reason": {**text, "StringValue": reason[:1000] or "-"},
        },
    )


def _record_delivery(ledger: Ledger, notification: str, detail: str) -> bool:
    """Record a delivery the receiver acknowledged. It is never recorded as failed: if the write
    keeps failing, the notification is still counted delivered, and the failure is logged and
    counted (its lease then expires and it may be delivered again: receivers deduplicate on its id)."""
    for attempt in range(RECORD_ATTEMPTS):
        try:
            ledger.delivered(notification, detail)
            return True
        except ClientError:
            if attempt + 1 == RECORD_ATTEMPTS:
                logger.exception("delivered, but the ledger could not record it", extra={"notification_id": notification})
                return False
            time.sleep(0.2 * 2**attempt)
    return False


@metrics.log_metrics
@logger.inject_lambda_context
@surfaced
# Inside surfaced: a trace shows the error's own type. No response: no return value is traced (handlers.tracing).
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant = tenant_of(event)
    annotate(tenant_id=tenant, batch_id=event.get("batch_id"))
    logger.append_keys(tenant_id=tenant, batch_id=event.get("batch_id"))
    logger.append_keys(correlation_id=event.get("batch_id"))  # the batch id: one id across every stage's logs
    matches = _matches(tenant, event)
    ledger = Ledger(
        _table("STATE_TABLE"),
        tenant,
        lease_seconds=int(aws.setting("DELIVERY_LEASE_SECONDS", str(LEASE_SECONDS))),
        backoff_seconds=int(aws.setting("DELIVERY_BACKOFF_SECONDS", str(BACKOFF_SECONDS))),
        # this attempt and the state machine's retries of it: one round of delivery (Terraform sets it)
        attempts_per_round=int(aws.setting("DELIVERY_ATTEMPTS_PER_ROUND", "1")),
    )
    settings = tenant_settings.read(_table("RULES_TABLE"), tenant)
    configured = settings.channels()
    sender = Sender(tenant, configured, settings.webhook_url, _policy(), _secret, _ses)
    matches = [delivery for match in matches for delivery in deliveries.deliveries(match, configured)]
    delivered, duplicates, failed, deferred, dead, errors = [], [], [], [], [], []
    unrecorded = 0
    by_channel: Counter[str] = Counter()
    # Stop in time: what is left when the deadline nears waits for the tenant's re-evaluation.
    reserve_ms = (float(aws.setting("WEBHOOK_TIMEOUT_SECONDS", "5")) + DEADLINE_MARGIN_SECONDS) * 1000
    for match in matches:
        nid = match["notification_id"]
        if context.get_remaining_time_in_millis() < reserve_ms:
            if ledger.defer(match, "deferred: the function's deadline was near"):
                deferred.append(nid)
            continue
        attempt = ledger.claim(match)
        if attempt is None:
            duplicates.append(nid)
            continue
        channel = (match.get("delivery") or {}).get("channel", "webhook")
        try:
            with tracer.provider.in_subsegment("## deliver"):  # one delivery on one channel; a failure shows as its fault
                annotate(channel=channel)
                detail = sender.send(match, _deadline(context.get_remaining_time_in_millis()))
        except (webhook.DeliveryError, ClientError) as exc:
            reason = str(exc)
            failed.append(nid)
            errors.append(_shown(exc))
            logger.warning(
                "notification not delivered", extra={"notification_id": nid, "channel": channel, "attempt": attempt, "error": reason}
            )
            by_channel[f"NotificationsFailed_{channel}"] += 1
            if isinstance(exc, PermanentError) or ledger.exhausted(attempt):
                _dead_letter(tenant, match, attempt, reason)  # raises if it cannot: the attempt then stays pending
                ledger.dead_lettered(nid, reason)
                dead.append(nid)
            else:
                ledger.failed(nid, attempt, reason)
            continue
        delivered.append(nid)
        by_channel[f"NotificationsDelivered_{channel}"] += 1
        unrecorded += not _record_delivery(ledger, nid, detail)
    metrics.add_metric(name="NotificationsDelivered", unit=MetricUnit.Count, value=len(delivered))
    metrics.add_metric(name="NotificationsFailed", unit=MetricUnit.Count, value=len(failed))
    metrics.add_metric(name="NotificationsDuplicate", unit=MetricUnit.Count, value=len(duplicates))
    for name, value in sorted(by_channel.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for name, value in (("NotificationsDeferred", len(deferred)), ("NotificationsDeadLettered", len(dead)),
                        ("NotificationsDeliveredUnrecorded", unrecorded)):  # fmt: skip
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    annotate(delivered=len(delivered), failed=len(failed), duplicates=len(duplicates), deferred=len(deferred), dead_lettered=len(dead))
    if len(failed) > len(dead) and not delivered:
        # Those delivered by an earlier attempt count as duplicates now: a retry still fails when
        # it delivered nothing of what was left (and is retried again, up to the state machine's
        # limit), unless all that failed was dead-lettered: no retry can deliver those.
        raise AllNotificationsFailedException(f"none of {len(failed)} notifications for tenant {tenant} was delivered: {errors[0]}")
    result = {
        "tenant_id": tenant,
        "batch_id": event.get("batch_id"),
        "delivered": len(delivered),
        "duplicates": len(duplicates),
        "failed": len(failed),
        "deferred": len(deferred),
        "dead_lettered": len(dead),
        "notification_ids": delivered,
    }
    logger.info("notifications", extra={k: v for k, v in result.items() if k != "notification_ids"})
    return result
