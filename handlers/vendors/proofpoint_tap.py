"""Proofpoint TAP: the SIEM API (``/v2/siem/all`` and friends), whose responses group records in
``messagesDelivered``, ``messagesBlocked``, ``clicksPermitted`` and ``clicksBlocked``.

A message to several recipients becomes one event per recipient: each is a person to coach.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import OTHER
from handlers.records import Context, Event
from handlers.vendors.fields import clean, email, hashes, parse_time, require, split_list, text

SOURCE = "proofpoint_tap"
VENDOR = "Proofpoint"
_GROUPS = {
    "messagesDelivered": ("message", "delivered"),
    "messagesBlocked": ("message", "blocked"),
    "clicksPermitted": ("click", "permitted"),
    "clicksBlocked": ("click", "blocked"),
}
_BAD = {"malware", "phish", "phishing", "impostor", "spam"}


def records(payload: Any) -> Iterable[Any]:
    if isinstance(payload, dict) and any(k in payload for k in _GROUPS):
        for group, (kind, status) in _GROUPS.items():
            found = payload.get(group) or []
            # A group that is not an array is one record (rejected if it is not an object), never iterated.
            for record in found if isinstance(found, list) else [found]:
                yield {**record, "type": kind, "status": status} if isinstance(record, dict) else record
        return
    yield from payload if isinstance(payload, list) else [payload]


def detect(record: Any) -> bool:
    if not isinstance(record, dict) or "GUID" not in record:
        return False
    return "clickTime" in record or ("messageID" in record and ("threatsInfoMap" in record or "spamScore" in record))


def _severity(classifications: list[str], score: int = 0) -> int:
    if any(c.lower() in ("malware", "phish", "phishing") for c in classifications) or score >= 80:
        return 4
    if any(c.lower() in _BAD for c in classifications) or score >= 50:
        return 3
    return 1


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    is_click = record.get("type") == "click" or "clickTime" in record
    status = (text(record, "status") or "").lower()
    sender = text(record, "sender")
    if is_click:
        classification = text(record, "classification")
        malware = clean({"name": text(record, "threatID") or classification, "classification": classification})
        when = parse_time(require(record, "clickTime"), "clickTime")
        return [
            build(
                ctx,
                Header(VENDOR, "Proofpoint TAP", when, f"click:{status or 'unknown'}", text(record, "id") or text(record, "GUID")),
                class_uid=4010,
                activity_id=OTHER,
                activity_name="Click",
                severity_id=_severity([classification] if classification else []),
                disposition_id=2 if status == "blocked" else 1,
                user=clean({"email_addr": email(text(record, "recipient")), "name": text(record, "recipient")}),
                actor=clean({"email_addr": email(sender)}),
                url=clean({"url_string": text(record, "url")}),
                src_endpoint=clean({"ip": text(record, "clickIP")}),
                email=clean({"uid": text(record, "messageID"), "from": sender}),
                malware=[malware] if classification and malware else None,
            )
        ]
    threats = [t for t in record.get("threatsInfoMap") or [] if isinstance(t, dict)]
    classifications = sorted({text(t, "classification") or "" for t in threats} - {""})
    score = max(int(record.get(k) or 0) for k in ("malwareScore", "phishScore", "spamScore", "impostorScore"))
    sender_addr = next(iter(split_list(record.get("fromAddress")) or []), None) or sender
    attachments = [p for p in record.get("messageParts") or [] if isinstance(p, dict) and text(p, "sandboxStatus") == "threat"]
    header = Header(
        VENDOR,
        "Proofpoint TAP",
        parse_time(require(record, "messageTime"), "messageTime"),
        f"message:{status or 'unknown'}",
        text(record, "GUID"),
    )
    named = [clean({"name": text(t, "threat"), "classification": text(t, "classification")}) for t in threats if text(t, "threat")]
    attachment = (
        clean(
            {
                "name": text(attachments[0], "filename"),
                "hashes": hashes(text(attachments[0], "md5"), None, text(attachments[0], "sha256")),
            }
        )
        if attachments
        else None
    )
    recipients = split_list(record.get("recipient")) or split_list(record.get("toAddresses"))
    return [
        build(
            recipient_ctx,
            header,
            class_uid=4009,
            activity_id=2,
            activity_name="Receive",
            severity_id=_severity(classifications, score),
            disposition_id=2 if status == "blocked" else 3 if text(record, "quarantineFolder") else 1 if status == "delivered" else None,
            actor=clean({"email_addr": email(sender_addr)}),
            src_endpoint=clean({"ip": text(record, "senderIP")}),
            malware=[m for m in named if m] or None,
            finding_info=clean({"types": split_list(sorted({text(t, "threatType") or "" for t in threats} - {""}))}),
            file=attachment,
            user=clean({"email_addr": email(recipient), "name": recipient}),
            email=clean(
                {
                    "subject": text(record, "subject"),
                    "from": sender_addr,
                    "to": [recipient] if recipient else None,
                    "uid": text(record, "messageID"),
                }
            ),
        )
        for recipient_ctx, recipient in ctx.per(recipients)
    ]
