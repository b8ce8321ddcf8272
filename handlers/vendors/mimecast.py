"""Mimecast email security: SIEM API log records (receipt, process, AV, URL Protect, Impersonation
Protect). One event per recipient."""

from __future__ import annotations

from typing import Any, Iterable

from handlers.events import build
from handlers.outcomes import Ignored
from handlers.vendors._common import Context, clean, email, epoch_ms, hashes, parse_time, split_list, text

SOURCE = "mimecast"
VENDOR = "Mimecast"


def records(payload: Any) -> Iterable[Any]:
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        yield from payload["data"]
        return
    yield from payload if isinstance(payload, list) else [payload]


def detect(record: Any) -> bool:
    return isinstance(record, dict) and "accountId" in record and ("processingId" in record or "aggregateId" in record)


def normalize(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    kind = (text(record, "eventType") or text(record, "type") or "").lower()
    action = text(record, "action") or text(record, "subtype")
    when = record.get("timestamp")
    time_ms = (
        epoch_ms(when, "timestamp")
        if isinstance(when, (int, float)) or (isinstance(when, str) and when.isdigit())
        else parse_time(when or record.get("datetime"), "timestamp")
    )
    sender = text(record, "senderEnvelope") or text(record, "senderHeader")
    base: dict[str, Any] = dict(
        tenant=ctx.tenant, vendor_name=VENDOR, product="Mimecast Email Security", time_ms=time_ms,
        event_code=kind or "unknown", vendor_uid=text(record, "processingId"),
        actor=clean({"email_addr": email(sender)}), src_endpoint=clean({"ip": text(record, "senderIp") or text(record, "sourceIp")}),
    )  # fmt: skip
    email_info = {"subject": text(record, "subject"), "from": sender, "uid": text(record, "messageId")}
    if kind == "url protect":
        blocked = (action or "").lower() == "block"
        base.update(class_uid=4010, activity_id=99, activity_name="Click", disposition_id=2 if blocked else 1,
                    severity_id=4 if text(record, "blockReason") == "malicious" else 2 if blocked else 1,
                    url=clean({"url_string": text(record, "url"), "categories": split_list(text(record, "urlCategory"))}),
                    finding_info=clean({"types": split_list(text(record, "blockReason"))}))  # fmt: skip
    elif kind == "av":
        base.update(class_uid=4009, activity_id=2, activity_name="Receive", severity_id=4, disposition_id=2,
                    malware=[{"name": text(record, "virusFound") or "unknown"}],
                    file=clean({"name": text(record, "fileName"), "hashes": hashes(text(record, "md5"), text(record, "sha1"), text(record, "sha256"))}))  # fmt: skip
    elif kind == "impersonation protect":
        held = (action or "").lower() in ("hold", "bounce", "reject")
        base.update(class_uid=4009, activity_id=2, activity_name="Receive", severity_id=3, disposition_id=3 if held else 1,
                    policy=clean({"name": text(record, "policyDefinition")}), finding_info={"types": ["impersonation"]})  # fmt: skip
    elif kind == "receipt":
        rejected = (action or "").lower().startswith("rej")
        base.update(class_uid=4009, activity_id=2, activity_name="Receive", severity_id=2 if rejected else 1,
                    disposition_id=25 if rejected else 1, message=text(record, "rejectionType"),
                    finding_info=clean({"types": split_list(text(record, "rejectionType"))}))  # fmt: skip
    elif kind == "process":
        base.update(class_uid=4009, activity_id=3, activity_name="Scan", severity_id=1,
                    disposition_id=1 if (action or "").lower().startswith("acc") else 99)  # fmt: skip
    else:
        raise Ignored(f"unsupported_event_type: Mimecast {kind or 'record'} carries no coaching signal")
    recipients = split_list(text(record, "recipients")) or [None]
    return [
        build(
            **base,
            uid=ctx.uid if n == 0 else ctx.part_uid(recipient or str(n)),
            user=clean({"email_addr": email(recipient), "name": recipient}),
            email=clean({**email_info, "to": [recipient] if recipient else None}),
        )  # fmt: skip
        for n, recipient in enumerate(recipients)
    ]
