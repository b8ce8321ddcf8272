"""Proofpoint TAP: the SIEM API (``/v2/siem/all`` and friends), whose responses group records in
``messagesDelivered``, ``messagesBlocked``, ``clicksPermitted`` and ``clicksBlocked``.

A message to several recipients becomes one event per recipient: each is a person to coach.
"""

from __future__ import annotations

from typing import Any, Iterable

from handlers.events import build
from handlers.vendors._common import Context, clean, email, hashes, parse_time, require, split_list, text

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
            for record in payload.get(group) or []:
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


def normalize(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    is_click = record.get("type") == "click" or "clickTime" in record
    status = (text(record, "status") or "").lower()
    sender = text(record, "sender")
    if is_click:
        classification = text(record, "classification")
        blocked = status == "blocked"
        return [build(
            uid=ctx.uid, tenant=ctx.tenant, vendor_name=VENDOR, product="Proofpoint TAP",
            time_ms=parse_time(require(record, "clickTime"), "clickTime"), event_code=f"click:{status or 'unknown'}",
            vendor_uid=text(record, "id") or text(record, "GUID"), class_uid=4010, activity_id=99, activity_name="Click",
            severity_id=_severity([classification] if classification else []), disposition_id=2 if blocked else 1,
            user=clean({"email_addr": email(text(record, "recipient")), "name": text(record, "recipient")}),
            actor=clean({"email_addr": email(sender)}),
            url=clean({"url_string": text(record, "url")}),
            src_endpoint=clean({"ip": text(record, "clickIP")}),
            email=clean({"uid": text(record, "messageID"), "from": sender}),
            malware=[clean({"name": text(record, "threatID") or classification, "classification": classification})] if classification else None,
        )]  # fmt: skip
    threats = [t for t in record.get("threatsInfoMap") or [] if isinstance(t, dict)]
    classifications = sorted({text(t, "classification") or "" for t in threats} - {""})
    score = max(int(record.get(k) or 0) for k in ("malwareScore", "phishScore", "spamScore", "impostorScore"))
    recipients = split_list(record.get("recipient")) or split_list(record.get("toAddresses")) or []
    sender_addr = (split_list(record.get("fromAddress")) or [None])[0] or sender
    attachments = [p for p in record.get("messageParts") or [] if isinstance(p, dict) and text(p, "sandboxStatus") == "threat"]
    common = dict(
        tenant=ctx.tenant, vendor_name=VENDOR, product="Proofpoint TAP",
        time_ms=parse_time(require(record, "messageTime"), "messageTime"), event_code=f"message:{status or 'unknown'}",
        vendor_uid=text(record, "GUID"), class_uid=4009, activity_id=2, activity_name="Receive",
        severity_id=_severity(classifications, score),
        disposition_id=2 if status == "blocked" else 3 if text(record, "quarantineFolder") else 1 if status == "delivered" else None,
        actor=clean({"email_addr": email(sender_addr)}),
        src_endpoint=clean({"ip": text(record, "senderIP")}),
        malware=[clean({"name": text(t, "threat"), "classification": text(t, "classification")}) for t in threats if text(t, "threat")] or None,
        finding_info=clean({"types": split_list(sorted({text(t, "threatType") or "" for t in threats} - {""}))}),
        file=clean({"name": text(attachments[0], "filename"), "hashes": hashes(text(attachments[0], "md5"), None, text(attachments[0], "sha256"))}) if attachments else None,
    )  # fmt: skip
    if not recipients:
        recipients = [None]
    events = []
    for n, recipient in enumerate(recipients):
        events.append(build(
            **common, uid=ctx.uid if n == 0 else ctx.part_uid(recipient or str(n)),
            user=clean({"email_addr": email(recipient), "name": recipient}),
            email=clean({"subject": text(record, "subject"), "from": sender_addr, "to": [recipient] if recipient else None,
                         "uid": text(record, "messageID")}),
        ))  # fmt: skip
    return events
