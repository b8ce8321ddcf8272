"""One delivery sent on its channel: the I/O behind ``handlers.channels`` and ``handlers.messages``.

Every HTTP channel (the webhook, Slack, Teams, the learning platform) goes through the guarded
``webhook.request``: https only, public addresses only (checked, then connected to), no redirects,
one deadline for the whole exchange. Email goes to SES through the AWS SDK with timeouts inside
the same deadline. The delivery ledger around every call (``handlers.trigger_notifications``) makes
each delivery happen once.

``PermanentError``: no retry can deliver this (a recipient outside the tenant's domains, a person
Slack does not know, an escalation no channel can carry); it is dead-lettered at once, with why.
Any other ``DeliveryError`` or AWS ``ClientError`` is retried, then dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from handlers import messages, notify, webhook
from handlers.deliveries import EMAIL, SECRET_FIELDS

if TYPE_CHECKING:
    from handlers.channels import Channels


class PermanentError(webhook.DeliveryError):
    """No retry can deliver this notification: it is dead-lettered at once."""


@dataclass(frozen=True)
class Sender:
    """What sending a tenant's deliveries needs; the adapter builds one per invocation."""

    tenant: str
    channels: Channels | None
    webhook_url: str | None
    policy: webhook.Policy
    secret: Callable[[str], str]  # a secret's value by its name below the tenants' prefix ("acme", "acme/slack")
    ses: Callable[[], Any]  # an SES v2 client whose timeouts fit within one delivery's deadline

    def send(self, match: dict[str, Any], deadline: float) -> str:
        """Deliver one delivery by ``deadline`` (a ``time.monotonic()`` value): a short detail for
        the ledger, or ``DeliveryError`` / ``PermanentError`` / botocore's ``ClientError``."""
        delivery = match.get("delivery") or {"channel": "webhook"}
        channel = delivery["channel"]
        if channel == "webhook":
            return self._webhook(match, deadline)
        if channel == "none":
            raise PermanentError(
                f"escalation to {delivery.get('to')!r} has no channel: name an email address (with email configured) "
                "or add webhook to the tenant's default channels"
            )
        if self.channels is None or not self.channels.configured(channel):
            raise PermanentError(f"tenant {self.tenant} has no {channel} channel configured")
        templates: dict[str, Any] = {name: t.model_dump(exclude_none=True) for name, t in self.channels.templates.items()}
        if channel == "email":
            return self._email(match, delivery, templates, deadline)
        if channel == "slack":
            return self._slack(match, templates, deadline)
        if channel == "teams":
            url = self._credentials("teams")["webhook_url"]
            return self._post_json(url, messages.teams(match, templates), {}, deadline, "teams")
        if channel == "learning":
            creds = self._credentials("learning")
            headers = {"Authorization": f"Bearer {creds['token']}", "Idempotency-Key": match["notification_id"]}
            return self._post_json(creds["url"], messages.assignment(match, self.tenant), headers, deadline, "learning")
        raise PermanentError(f"unknown channel {channel!r}")

    # -- channels --------------------------------------------------------------------------------

    def _webhook(self, match: dict[str, Any], deadline: float) -> str:
        if not self.webhook_url:
            raise webhook.DeliveryError(f"tenant {self.tenant} has no webhook_url")
        body = notify.encode(notify.notification(self.tenant, _without_delivery(match)))
        headers = notify.headers(self.secret(self.tenant), match["notification_id"], int(time.time()), body)
        status = webhook.post(self.webhook_url, body, headers, deadline=deadline, policy=self.policy)
        return f"HTTP {status}"

    def _email(self, match: dict[str, Any], delivery: dict[str, Any], templates: dict[str, Any], deadline: float) -> str:
        settings = self.channels.email if self.channels else None
        assert settings is not None  # configured() said so
        audience = delivery.get("audience", "person")
        to = str(delivery.get("to") or (match.get("user") or {}).get("email_addr") or "")
        who = "the manager" if audience == "manager" else "the person"
        if not to:
            raise PermanentError(f"the event names no email address for {who}")
        if not EMAIL.match(to):
            raise PermanentError(f"{who}'s address {to[:80]!r} is not an email address")
        if not settings.allows(to):
            raise PermanentError(f"{who}'s address is outside the tenant's recipient_domains ({to.rpartition('@')[2][:80]})")
        message = messages.email(match, templates, audience)
        utf8 = {"Charset": "UTF-8"}
        answer = self.ses().send_email(
            FromEmailAddress=settings.sender,
            Destination={"ToAddresses": [to]},
            **({"ReplyToAddresses": [settings.reply_to]} if settings.reply_to else {}),
            Content={
                "Simple": {
                    "Subject": {"Data": message["subject"], **utf8},
                    "Body": {"Text": {"Data": message["text"], **utf8}, "Html": {"Data": message["html"], **utf8}},
                }
            },
            EmailTags=[{"Name": "tenant", "Value": self.tenant}, {"Name": "notification", "Value": match["notification_id"]}],
        )
        return f"SES {answer.get('MessageId', '?')}"

    def _slack(self, match: dict[str, Any], templates: dict[str, Any], deadline: float) -> str:
        settings = self.channels.slack if self.channels else None
        assert settings is not None
        creds = self._credentials("slack")
        message = messages.slack(match, templates)
        token = creds.get("bot_token")
        if not token:  # an incoming webhook: posts to the channel it was made for
            return self._post_json(creds["webhook_url"], message, {}, deadline, "slack")
        auth = {"Authorization": f"Bearer {token}"}
        if settings.dm_by_email:
            address = str((match.get("user") or {}).get("email_addr") or "")
            if not EMAIL.match(address):
                raise PermanentError("the event names no email address to find the person in Slack by")
            found = self._slack_api(settings.api_url, "users.lookupByEmail", urlencode({"email": address}).encode(),
                                    {**auth, "Content-Type": "application/x-www-form-urlencoded"}, deadline)  # fmt: skip
            target = str((found.get("user") or {}).get("id") or "")
            if not target:
                raise webhook.DeliveryError("slack users.lookupByEmail answered without a user id")
        elif settings.channel:
            target = settings.channel
        else:
            raise PermanentError("slack has a bot token but neither dm_by_email nor a channel to post to")
        posted = self._slack_api(settings.api_url, "chat.postMessage", notify.encode({"channel": target, **message}),
                                 {**auth, "Content-Type": "application/json; charset=utf-8"}, deadline)  # fmt: skip
        return f"slack ts {posted.get('ts', '?')}"

    def _slack_api(self, api_url: str, method: str, body: bytes, headers: dict[str, str], deadline: float) -> dict[str, Any]:
        """One Slack Web API call: its answer, or why not (Slack answers 200 with ``ok: false``)."""
        answer = webhook.request(f"{api_url}/{method}", body, {"User-Agent": "coachflow", **headers}, deadline=deadline, policy=self.policy)
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise webhook.DeliveryError(f"slack {method} answered HTTP {answer.status} with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise webhook.DeliveryError(f"slack {method} answered with JSON that is not an object")
        if data.get("ok") is not True:
            error = str(data.get("error") or "no error named")[:100]
            if error in ("users_not_found", "user_not_found", "channel_not_found", "is_archived", "cannot_dm_bot"):
                raise PermanentError(f"slack {method}: {error}")
            raise webhook.DeliveryError(f"slack {method}: {error}")
        return data

    def _post_json(self, url: str, payload: dict[str, Any], headers: dict[str, str], deadline: float, channel: str) -> str:
        body = notify.encode(payload)
        all_headers = {"Content-Type": "application/json", "User-Agent": "coachflow", **headers}
        try:
            status = webhook.post(url, body, all_headers, deadline=deadline, policy=self.policy)
        except webhook.DeliveryError as exc:
            raise type(exc)(f"{channel}: {exc}") from None
        return f"{channel} HTTP {status}"

    def _credentials(self, channel: str) -> dict[str, str]:
        """The channel's secret, a JSON object with its fields (``channels.SECRET_FIELDS``). Missing
        or malformed is a ``DeliveryError`` (retried: an operator may fix it), never its content."""
        name = f"{self.tenant}/{channel}"
        try:
            value = json.loads(self.secret(name))
        except ValueError:
            raise webhook.DeliveryError(f"the {channel} secret of tenant {self.tenant} is not a JSON object") from None
        if not isinstance(value, dict):
            raise webhook.DeliveryError(f"the {channel} secret of tenant {self.tenant} is not a JSON object")
        if any(c in v for v in value.values() if isinstance(v, str) for c in "\r\n\0"):
            raise webhook.DeliveryError(f"the {channel} secret of tenant {self.tenant} holds a line break or NUL in a field")
        for one_of in SECRET_FIELDS[channel]:
            if not any(isinstance(value.get(f), str) and value.get(f) for f in one_of):
                raise webhook.DeliveryError(f"the {channel} secret of tenant {self.tenant} has no {' or '.join(one_of)}")
        return {k: v for k, v in value.items() if isinstance(v, str)}


def _without_delivery(match: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in match.items() if k != "delivery"}
