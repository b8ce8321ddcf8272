"""Palo Alto Networks NGFW: PAN-OS syslog CSV (TRAFFIC, THREAT, GLOBALPROTECT), Cortex Data Lake
CEF and JSON (THREAT, TRAFFIC)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import severity_by_name
from handlers.outcomes import Ignored, IgnoreReason, Rejected, RejectReason
from handlers.records import Context, Event, Line
from handlers.vendors.fields import clean, each, parse_time, port, text

SOURCE = "paloalto"
VENDOR = "Palo Alto Networks"
_SYSLOG = re.compile(r"^<\d+>\w{3}\s+\d+\s[\d:]+\s\S+\s")
_CSV = re.compile(
    r"^(<\d+>\w{3}\s+\d+\s[\d:]+\s\S+\s)?\d*,[\d/]+ [\d:]+,\w+,(TRAFFIC|THREAT|GLOBALPROTECT|SYSTEM|CONFIG|URL|USERID|HIPMATCH|DECRYPTION|AUTHENTICATION),"
)
_CEF_KEY = re.compile(r"(?:^|\s)([A-Za-z0-9_.\-]+)=")
_GP_LOGINS = {"portal-auth", "gateway-auth", "portal-prelogin", "gateway-connected", "login", "gateway-register"}


records = each


def detect(record: Any) -> bool:
    return isinstance(record, dict) and "LogType" in record and ("DeviceSN" in record or "DeviceName" in record)


def detect_text(text: str) -> bool:
    first = text.lstrip()
    return first.startswith("CEF:0|Palo Alto Networks|") or bool(_CSV.match(first))


def parse_text(payload: str) -> Iterator[Line]:
    # Lines end at "\n" only: str.splitlines() would also cut a field at U+2028, \x1c and the like.
    for number, line in enumerate(payload.split("\n"), 1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            fields = _cef(stripped) if stripped.startswith("CEF:") else _csv_fields(stripped)
        except Rejected as exc:
            yield Line(stripped, None, number, exc.detail)
            continue
        yield Line(stripped, fields, number)


def _csv_fields(line: str) -> dict[str, Any]:
    body = _SYSLOG.sub("", line, count=1)
    try:
        row = next(csv.reader([body], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise Rejected(RejectReason.MALFORMED, f"not a PAN-OS CSV line: {exc}") from None
    return {"format": "csv", "row": row}


def _cef(line: str) -> dict[str, Any]:
    parts = line.split("|", 7)
    if len(parts) < 8:
        raise Rejected(RejectReason.MALFORMED, "a CEF line has 7 header fields and an extension")
    # Splitting at the keys gives [what precedes the first key, key, value, key, value, ...]: each
    # value runs to the next key (a CEF line has over a hundred, so one pass over it, not one per key).
    pieces = _CEF_KEY.split(parts[7])
    fields = {key: value.strip().replace("\\=", "=") for key, value in zip(pieces[1::2], pieces[2::2])}
    return {"format": "cef", "type": parts[4], "subtype": parts[5], "severity": parts[6], "fields": fields}


def _pan_time(value: str, path: str) -> int:
    value = value.strip()
    if re.match(r"^\d{1,2}/\d{1,2}/\d{2} \d{1,2}:\d{2}$", value):  # M/D/YY H:MM, as some PAN-OS versions log
        return parse_time(dt.datetime.strptime(value, "%m/%d/%y %H:%M").strftime("%Y-%m-%d %H:%M:%S"), path)
    return parse_time(value, path)


def _user(name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    domain, _, user = name.rpartition("\\")
    return clean({"name": user, "domain": domain.rstrip("\\") or None})


def _severity(word: str | None) -> int:
    return severity_by_name(word) or 1


def _disposition(action: str) -> int | None:
    """Cortex Data Lake and CEF actions: allow/alert let the traffic through, the rest stop it."""
    return 1 if action in ("allow", "alert") else 2 if action else None


def normalize(record: Any, ctx: Context) -> list[Event]:
    if isinstance(record, Line):
        data = record.fields or {}
        if data.get("format") == "cef":
            return [_cef_event(data, ctx)]
        return [_csv_event(data["row"], ctx)]
    kind = (text(record, "LogType") or "").upper()
    if kind not in ("THREAT", "TRAFFIC"):
        raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"PAN-OS {kind or 'record'} log carries no coaching signal")
    threat = kind == "THREAT"
    categories = [t for t in (text(record, "ThreatCategory"),) if t] or None
    return [
        build(
            ctx,
            Header(
                VENDOR,
                "PAN-OS (Cortex Data Lake)",
                parse_time(record.get("TimeGenerated"), "TimeGenerated"),
                f"{kind}:{text(record, 'Subtype')}",
                str(record.get("SequenceNo") or "") or None,
            ),
            class_uid=2004 if threat else 4001,
            activity_id=1 if threat else 6,
            activity_name="Create" if threat else "Traffic",
            severity_id=_severity(text(record, "VendorSeverity")),
            disposition_id=_disposition((text(record, "Action") or "").lower()),
            user=_user(text(record, "SourceUser")),
            app_name=text(record, "Application"),
            src_endpoint=clean({"ip": text(record, "SourceAddress"), "port": port(record, "SourcePort")}),
            dst_endpoint=clean({"ip": text(record, "DestinationAddress"), "port": port(record, "DestinationPort")}),
            policy=clean({"name": text(record, "Rule")}),
            finding_info=clean({"title": text(record, "ThreatID"), "types": categories}) if threat else None,
        )
    ]


def _csv_event(row: list[str], ctx: Context) -> Event:
    if len(row) < 10:
        raise Rejected(RejectReason.MALFORMED, f"a PAN-OS CSV log has dozens of columns, got {len(row)}")
    kind, subtype = row[3].upper(), row[4]
    when = _pan_time(row[6] or row[1], "generated time")
    if kind in ("TRAFFIC", "THREAT"):
        if len(row) < 35:
            raise Rejected(RejectReason.MALFORMED, f"a PAN-OS {kind} log has at least 35 columns, got {len(row)}")
        action = row[30].lower()
        blocked = action in ("deny", "drop", "reset-client", "reset-server", "reset-both", "block-url", "drop-all")
        threat = kind == "THREAT"
        network_activity = {"start": (1, "Open"), "end": (2, "Close"), "drop": (5, "Refuse"), "deny": (5, "Refuse")}
        activity_id, activity_name = (1, "Create") if threat else network_activity.get(subtype, (6, "Traffic"))
        types = [t for t in (row[33], subtype) if t and t != "any"] or None
        return build(
            ctx,
            Header(VENDOR, "PAN-OS", when, f"{kind}:{subtype}"),
            class_uid=2004 if threat else 4001,
            activity_id=activity_id,
            activity_name=activity_name,
            severity_id=_severity(row[34]) if threat else 1,
            disposition_id=2 if blocked else 1,
            user=_user(row[12]),
            app_name=row[14] or None,
            src_endpoint=clean({"ip": row[7] or None, "port": port({"p": row[24]}, "p")}),
            dst_endpoint=clean({"ip": row[8] or None, "port": port({"p": row[25]}, "p")}),
            policy=clean({"name": row[11] or None}),
            finding_info=clean({"title": row[32] or None, "types": types}) if threat else None,
            url=clean({"url_string": row[31] or None}) if threat and subtype == "url" else None,
        )
    if kind == "GLOBALPROTECT":
        event = row[8] if len(row) > 8 else ""
        if event not in _GP_LOGINS:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, f"GlobalProtect {event or 'event'} is gateway housekeeping, not a sign-in")
        status = row[28].lower() if len(row) > 28 else ""
        return build(
            ctx,
            Header(VENDOR, "GlobalProtect", when, f"GLOBALPROTECT:{event}"),
            class_uid=3002,
            activity_id=1,
            activity_name=event,
            severity_id=1,
            status_id=1 if status == "success" else 2 if status else 0,
            user=_user(row[12] if len(row) > 12 else None),
            src_endpoint=clean({"ip": row[15] if len(row) > 15 else None}),
            device=clean({"hostname": row[14] if len(row) > 14 else None, "os_name": row[22] if len(row) > 22 else None}),
        )
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"PAN-OS {kind} log carries no coaching signal")


def _cef_event(data: dict[str, Any], ctx: Context) -> Event:
    f = data["fields"]
    kind = data["type"].upper()
    if kind not in ("THREAT", "TRAFFIC"):
        raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"PAN-OS {kind} log carries no coaching signal")
    threat = kind == "THREAT"
    title = f.get("PanOSThreatNameFirewall") or f"{data['subtype']} threat log"
    return build(
        ctx,
        Header(
            VENDOR, "PAN-OS (Cortex Data Lake)", parse_time(f.get("rt"), "rt"), f"{kind}:{data['subtype']}", f.get("externalId") or None
        ),
        class_uid=2004 if threat else 4001,
        activity_id=1 if threat else 6,
        activity_name="Create" if threat else "Traffic",
        severity_id=_severity(f.get("PanOSSeverity")),
        disposition_id=_disposition((f.get("act") or "").lower()),
        user=_user(f.get("suser") or None),
        app_name=f.get("app") or None,
        src_endpoint=clean({"ip": f.get("src") or None, "port": port(f, "spt")}),
        dst_endpoint=clean({"ip": f.get("dst") or None, "port": port(f, "dpt")}),
        file=clean({"name": f.get("filePath") or None, "type": f.get("PanOSFileType") or None}),
        policy=clean({"name": f.get("cs1") if f.get("cs1Label") == "Rule" else None}),
        finding_info=clean({"title": title, "types": [data["subtype"]]}) if threat else None,
    )
