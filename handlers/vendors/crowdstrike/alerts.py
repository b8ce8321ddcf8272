"""CrowdStrike Falcon Alerts API (v2) resources: one alert per record, keyed by ``composite_id``."""

from __future__ import annotations

from typing import Any

from handlers.events import Header, build
from handlers.records import Context, Event
from handlers.vendors.crowdstrike.falcon import VENDOR, disposition, severity, user
from handlers.vendors.fields import clean, get, hashes, parse_time, split_list, text


def has_envelope(record: dict[str, Any]) -> bool:
    return "composite_id" in record


def detect(record: dict[str, Any]) -> bool:
    return has_envelope(record) and ("cid" in record or "agent_id" in record)


def normalize(record: dict[str, Any], ctx: Context) -> Event:
    device = record.get("device") if isinstance(record.get("device"), dict) else {}
    when = parse_time(record.get("timestamp") or record.get("created_timestamp"), "timestamp")
    tactics = [t for t in (text(record, "tactic"), text(record, "technique")) if t]
    return build(
        ctx,
        Header(
            VENDOR, text(record, "product") or "Falcon", when, f"Alert:{text(record, 'type') or 'unknown'}", text(record, "composite_id")
        ),
        class_uid=2004,
        activity_id=1,
        activity_name="Create",
        severity_id=severity(get(record, "severity"), text(record, "severity_name")),
        disposition_id=disposition(get(record, "pattern_disposition_details"), text(record, "pattern_disposition_description")),
        message=text(record, "description"),
        user=user(text(record, "user_name"), principal=text(record, "user_principal")),
        device=clean(
            {
                "hostname": text(device, "hostname"),
                "ip": text(device, "local_ip"),
                "uid": text(device, "device_id") or text(record, "agent_id"),
                "os_name": text(device, "platform_name"),
            }
        ),
        file=clean(
            {
                "name": text(record, "filename"),
                "path": text(record, "filepath"),
                "hashes": hashes(text(record, "md5"), text(record, "sha1"), text(record, "sha256")),
            }
        ),
        process=clean({"name": text(record, "filename"), "cmd_line": text(record, "cmdline")}),
        finding_info=clean(
            {
                "title": text(record, "display_name") or text(record, "name"),
                "uid": text(record, "composite_id"),
                "types": split_list(tactics),
            }
        ),
    )
