"""Mimecast email security: SIEM API log records (receipt, process, AV, URL Protect, Impersonation
Protect). One event per recipient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import OTHER
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event
from handlers.vendors.fields import clean, email, epoch_ms, hashes, parse_time, split_list, text

SOURCE = "mimecast"
VENDOR = "Mimecast"


def records(payload: Any) -> Iterable[Any]:
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        yield from payload["data"]
        return
    yield from payload if isinstance(payload, list) else [payload]


def detect(record: Any) -> bool:
    return isinstance(record, dict) and "accountId" in record and ("processingId" in record or "aggregateId" in record)


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    kind = (text(record, "eventType") or text(record, "type") or "").lower()
    action = (text(record, "action") or text(record, "subtype") or "").lower()
    when = record.get("timestamp")
    time_ms = (
        epoch_ms(when, "timestamp")
        if isinstance(when, (int, float)) or (isinstance(when, str) and when.isdigit())
        else parse_time(when or record.get("datetime"), "timestamp")
    )
    header = Header(VENDOR, "Mimecast Email Security", time_ms, kind or "unknown", text(record, "processingId"))
    sender = text(record, "senderEnvelope") or text(record, "senderHeader")

    def event(
        ctx: Context,
        recipient: str | None,
        *,
        severity_id: int,
        disposition_id: int,
        class_uid: int = 4009,
        activity_id: int = 2,
        activity_name: str = "Receive",
        message: str | None = None,
        url: dict[str, Any] | None = None,
        file: dict[str, Any] | None = None,
        malware: list[dict[str, Any]] | None = None,
        policy: dict[str, Any] | None = None,
        finding_info: dict[str, Any] | None = None,
    ) -> Event:
        """One event of this message, for one recipient (each is a person to coach)."""
        return build(
            ctx,
            header,
            class_uid=class_uid,
            activity_id=activity_id,
            activity_name=activity_name,
            severity_id=severity_id,
            disposition_id=disposition_id,
            actor=clean({"email_addr": email(sender)}),
            src_endpoint=clean({"ip": text(record, "senderIp") or text(record, "sourceIp")}),
            user=clean({"email_addr": email(recipient), "name": recipient}),
            email=clean(
                {
                    "subject": text(record, "subject"),
                    "from": sender,
                    "uid": text(record, "messageId"),
                    "to": [recipient] if recipient else None,
                }
            ),
            message=message,
            url=url,
            file=file,
            malware=malware,
            policy=policy,
            finding_info=finding_info,
        )

    recipients = split_list(text(record, "recipients"))
    if kind == "url protect":
        blocked = action == "block"
        return [
            event(
                one,
                recipient,
                class_uid=4010,
                activity_id=OTHER,
                activity_name="Click",
                disposition_id=2 if blocked else 1,
                severity_id=4 if text(record, "blockReason") == "malicious" else 2 if blocked else 1,
                url=clean({"url_string": text(record, "url"), "categories": split_list(text(record, "urlCategory"))}),
                finding_info=clean({"types": split_list(text(record, "blockReason"))}),
            )
            for one, recipient in ctx.per(recipients)
        ]
    if kind == "av":
        return [
            event(
                one,
                recipient,
                severity_id=4,
                disposition_id=2,
                malware=[{"name": text(record, "virusFound") or "unknown"}],
                file=clean(
                    {
                        "name": text(record, "fileName"),
                        "hashes": hashes(text(record, "md5"), text(record, "sha1"), text(record, "sha256")),
                    }
                ),
            )
            for one, recipient in ctx.per(recipients)
        ]
    if kind == "impersonation protect":
        held = action in ("hold", "bounce", "reject")
        return [
            event(
                one,
                recipient,
                severity_id=3,
                disposition_id=3 if held else 1,
                policy=clean({"name": text(record, "policyDefinition")}),
                finding_info={"types": ["impersonation"]},
            )
            for one, recipient in ctx.per(recipients)
        ]
    if kind == "receipt":
        rejected = action.startswith("rej")
        return [
            event(
                one,
                recipient,
                severity_id=2 if rejected else 1,
                disposition_id=25 if rejected else 1,
                message=text(record, "rejectionType"),
                finding_info=clean({"types": split_list(text(record, "rejectionType"))}),
            )
            for one, recipient in ctx.per(recipients)
        ]
    if kind == "process":
        return [
            event(
                one,
                recipient,
                activity_id=3,
                activity_name="Scan",
                severity_id=1,
                disposition_id=1 if action.startswith("acc") else OTHER,
            )
            for one, recipient in ctx.per(recipients)
        ]
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"Mimecast {kind or 'record'} carries no coaching signal")
