"""Netskope: alerts and events (REST API v2 / Log Streaming JSON) and web transaction logs (W3C
space-separated or CSV lines, as Log Streaming writes them to S3)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import HTTP_ACTIVITY, OTHER, WEB_RESOURCES_ACTIVITY, severity_by_name
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event, Line
from handlers.vendors.fields import clean, email, epoch_ms, get, hashes, parse_time, port, split_list, text

SOURCE = "netskope"
VENDOR = "Netskope"
_TYPES = {"nspolicy", "malsite", "connection", "admin_audit_logs", "page", "application", "audit", "network",
          "incident", "alert", "uba", "securityassessment", "quarantine", "Malware", "compromisedcredential"}  # fmt: skip
# Web transaction log columns (Netskope transaction format v2), by position, when no #Fields header names them.
TRANSACTION_FIELDS = (
    "date time time-taken cs-bytes sc-bytes bytes c-ip s-ip cs-username cs-method cs-uri-scheme cs-uri-query "
    "cs-user-agent cs-content-type sc-status sc-content-type cs-dns cs-host cs-uri-path cs-uri-port cs-referer "
    "x-cs-session-id x-cs-access-method x-cs-app x-s-country x-s-latitude x-s-longitude x-s-location x-s-region "
    "x-s-zipcode x-c-country x-c-latitude x-c-longitude x-c-location x-c-region x-c-zipcode x-c-os x-c-browser "
    "x-c-browser-version x-c-device x-cs-site x-cs-timestamp x-cs-page-id x-cs-userip x-cs-traffic-type x-error "
    "x-category x-other-category x-type"
).split()
_POLICY_FROM_END = (-9, -8)  # x-policy-action, x-policy-name in the 146-column format
_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}[ ,]\d{2}:\d{2}:\d{2}[ ,]")
# Netskope activity -> Web Resources Activity (6001) activity_id
_ACTIVITIES = {
    "create": WEB_RESOURCES_ACTIVITY["create"],
    "upload": WEB_RESOURCES_ACTIVITY["create"],
    "post": WEB_RESOURCES_ACTIVITY["create"],
    "view": WEB_RESOURCES_ACTIVITY["read"],
    "download": WEB_RESOURCES_ACTIVITY["read"],
    "browse": WEB_RESOURCES_ACTIVITY["read"],
    "edit": WEB_RESOURCES_ACTIVITY["update"],
    "rename": WEB_RESOURCES_ACTIVITY["update"],
    "delete": WEB_RESOURCES_ACTIVITY["delete"],
    "search": WEB_RESOURCES_ACTIVITY["search"],
    "share": WEB_RESOURCES_ACTIVITY["share"],
    "login attempt": OTHER,
}


def records(payload: Any) -> Iterable[Any]:
    if isinstance(payload, dict):
        for wrapper in ("result", "data"):
            if isinstance(payload.get(wrapper), list):
                yield from payload[wrapper]
                return
    yield from payload if isinstance(payload, list) else [payload]


def detect(record: Any) -> bool:
    if not isinstance(record, dict) or "timestamp" not in record:
        return False
    kind = record.get("type")  # may be any JSON value: only a string can name a type (a list is not hashable)
    return "access_method" in record or "ur_normalized" in record or (isinstance(kind, str) and kind in _TYPES)


def detect_text(text: str) -> bool:
    lines = text.lstrip().split("\n", 10)[:10]
    directives = [line for line in lines if line.startswith("#")]  # #Software, #Version, #Date come before #Fields
    if any(line.startswith("#Fields:") for line in directives):
        return True
    first = lines[len(directives)] if len(directives) < len(lines) else ""
    return bool(_LINE.match(first)) and "http_transaction" in first


def parse_text(payload: str) -> Iterator[Line]:
    names: list[str] | None = None
    # Lines end at "\n" only: str.splitlines() would also cut a field at U+2028, \x1c and the like.
    for number, line in enumerate(payload.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = line.split(":", 1)[1].split()
            yield Line(line, None, number)  # a W3C directive, not an event
            continue
        delimiter = "," if re.match(r"^\d{4}-\d{2}-\d{2},", line) else " "
        try:
            row = next(csv.reader([line], delimiter=delimiter, quotechar='"', strict=True))
        except (csv.Error, StopIteration) as exc:
            yield Line(line, None, number, f"not a Netskope transaction line: {exc}")
            continue
        columns = names or TRANSACTION_FIELDS
        fields: dict[str, Any] = {name: value for name, value in zip(columns, row)}
        if names is None and len(row) > 100:
            fields["x-policy-action"], fields["x-policy-name"] = (row[i] for i in _POLICY_FROM_END)
        yield Line(line, fields, number)


def _user(record: dict[str, Any]) -> dict[str, Any] | None:
    name = text(record, "user") or text(record, "ur_normalized") or text(record, "userkey")
    if not name:
        return None
    return clean({"email_addr": email(name, text(record, "ur_normalized")), "name": name})


def _severity(record: dict[str, Any], default: int = 1) -> int:
    for field in ("severity", "dlp_rule_severity", "severity_level"):
        mapped = severity_by_name(text(record, field))
        if mapped:
            return mapped
    return default


def _disposition(action: str | None) -> int | None:
    actions = {"block": 2, "allow": 1, "useralert": 19, "alert": 19, "detection": 15, "bypass": 1, "quarantine": 3}
    return actions.get(action.lower()) if action else None


def normalize(record: Any, ctx: Context) -> list[Event]:
    if isinstance(record, Line):
        if record.fields is None:
            raise Ignored(IgnoreReason.NOT_EVENT, "W3C directive line (#Software, #Version, #Fields)")
        return [_transaction(record.fields, ctx)]
    kind, alert = text(record, "type") or "", (text(record, "alert_type") or "").lower()
    when, vendor_uid = epoch_ms(record.get("timestamp"), "timestamp"), text(record, "_id")
    site = text(record, "site") or ""
    url = clean(
        {
            "url_string": text(record, "url"),
            "hostname": site if "." in site else None,
            "categories": split_list(get(record, "other_categories") or text(record, "category")),
        }
    )
    file = (
        clean(
            {
                "name": text(record, "dlp_file") or text(record, "object") or text(record, "file_name"),
                "path": text(record, "file_path"),
                "type": text(record, "file_type"),
                "size": get(record, "file_size") or None,
                "hashes": hashes(text(record, "md5"), None, text(record, "sha256")),
            }
        )
        if text(record, "object_type") in (None, "File")
        else None
    )
    policy = clean({"name": text(record, "policy"), "uid": (text(record, "policy_id") or "").split(" ")[0] or None})
    disposition = _disposition(text(record, "action"))
    activity = (text(record, "activity") or "").lower()
    user, app = _user(record), text(record, "app") or text(record, "appname")
    src = clean({"ip": text(record, "srcip"), "location": {"country": text(record, "src_country"), "city": text(record, "src_location")}})
    dst = clean(
        {
            "ip": text(record, "dstip"),
            "port": port(record, "dstport") or None,
            "location": {"country": text(record, "dst_country"), "city": text(record, "dst_location")},
        }
    )
    device = clean({"hostname": text(record, "hostname"), "os_name": text(record, "os"), "ip": text(record, "userip")})

    def event(
        product: str,
        event_code: str,
        class_uid: int,
        activity_id: int,
        severity_id: int,
        *,
        activity_name: str | None = None,
        disposition_id: int | None = None,
        url: dict[str, Any] | None = url,
        file: dict[str, Any] | None = None,
        message: str | None = None,
        malware: list[dict[str, Any]] | None = None,
        finding_info: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
    ) -> Event:
        """An event of this record, with what every alert and event shares: who, which app, which
        policy, the network ends and the device."""
        return build(
            ctx,
            Header(VENDOR, product, when, event_code, vendor_uid),
            class_uid=class_uid,
            activity_id=activity_id,
            activity_name=activity_name,
            severity_id=severity_id,
            disposition_id=disposition_id,
            url=url,
            file=file,
            message=message,
            malware=malware,
            finding_info=finding_info,
            email=email,
            user=user,
            app_name=app,
            policy=policy,
            src_endpoint=src,
            dst_endpoint=dst,
            device=device,
        )

    if alert == "dlp":
        rules = [t for t in (text(record, "dlp_rule"), text(record, "dlp_profile")) if t]
        title = text(record, "dlp_profile") or "DLP policy violation"
        return [
            event(
                "Netskope DLP",
                f"{kind}:dlp",
                2006,
                1,
                _severity(record, 3),
                activity_name="Create",
                disposition_id=disposition,
                file=file,
                message=text(record, "dlp_rule") or text(record, "dlp_profile"),
                finding_info=clean({"title": title, "types": split_list(rules)}),
            )
        ]
    if alert in ("malware", "malsite") or kind == "malsite":
        threat = text(record, "malware_name") or text(record, "alert_name") or text(record, "object") or alert
        malicious_site = clean({**(url or {}), "categories": split_list(get(record, "malsite_category")) or (url or {}).get("categories")})
        malware = clean({"name": threat, "classification": text(record, "malware_type") or alert})
        title = "Malicious site" if alert == "malsite" else "Malware detected"
        return [
            event(
                "Netskope Threat Protection",
                f"{kind}:{alert or kind}",
                2004,
                1,
                _severity(record, 3),
                activity_name="Create",
                disposition_id=disposition or 15,
                url=malicious_site,
                file=file if alert == "malware" else None,
                malware=[malware] if malware else None,
                finding_info=clean({"title": title, "uid": text(record, "incident_id")}),
            )
        ]
    if kind in ("admin_audit_logs", "audit"):
        what = text(record, "audit_log_event") or ""
        login = "login" in what.lower()
        supporting_user = get(record, "supporting_data.data_type") == "user"
        return [
            build(
                ctx,
                Header(VENDOR, "Netskope Admin Audit", when, f"{kind}:{what}", vendor_uid),
                class_uid=3002 if login else 6003,
                activity_id=1 if login else OTHER,
                activity_name=what or None,
                severity_id=_severity(record, 1),
                status_id=2 if "fail" in what.lower() else 1 if login else None,
                user=user,
                src_endpoint=clean({"ip": (get(record, "supporting_data.data_values") or [None])[0] if supporting_user else None}),
            )
        ]
    if kind == "connection":
        return [event("Netskope SWG", kind, 4001, 1, 1, activity_name="Open", disposition_id=disposition or 1)]
    if activity in _ACTIVITIES or kind in ("application", "nspolicy"):
        return [
            event(
                "Netskope CASB",
                f"{kind}:{activity or 'policy'}",
                6001,
                _ACTIVITIES.get(activity, OTHER),
                _severity(record, 2 if disposition in (2, 19) else 1),
                activity_name=text(record, "activity"),
                disposition_id=disposition,
                file=file,
                message=text(record, "policy"),
                email=clean({"to": split_list(text(record, "to_user"))}),
            )
        ]
    if kind == "page":
        return [event("Netskope SWG", kind, 4002, OTHER, 1, disposition_id=disposition)]
    what = f"Netskope {kind or 'record'} {alert}".strip()
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"{what} carries no coaching signal")


def _transaction(f: dict[str, Any], ctx: Context) -> Event:
    when = f.get("x-cs-timestamp")
    time_ms = epoch_ms(when, "x-cs-timestamp") if when and when != "-" else parse_time(f"{f.get('date')} {f.get('time')}", "date time")
    method = (text(f, "cs-method") or "").upper()
    host = text(f, "cs-host") or text(f, "cs-dns")
    scheme = text(f, "cs-uri-scheme")
    path = text(f, "cs-uri-path") or text(f, "cs-uri") or ""  # Format 1 headers name the path column cs-uri
    action = (text(f, "x-policy-action") or "").lower()
    return build(
        ctx,
        Header(VENDOR, "Netskope SWG", time_ms, text(f, "x-type") or "http_transaction"),
        class_uid=4002,
        activity_id=HTTP_ACTIVITY.get(method, OTHER),
        activity_name=method or None,
        severity_id=1,
        disposition_id=2 if action.startswith("block") else 1 if action else None,
        message=text(f, "x-policy-name"),
        user=clean({"email_addr": email(text(f, "cs-username")), "name": text(f, "cs-username")}),
        url=clean(
            {
                "url_string": f"{scheme}://{host}{path}" if scheme and host else None,
                "hostname": host,
                "categories": split_list([c for c in (text(f, "x-category"),) if c]),
            }
        ),
        app_name=text(f, "x-cs-app"),
        src_endpoint=clean({"ip": text(f, "c-ip"), "location": {"country": text(f, "x-c-country"), "city": text(f, "x-c-location")}}),
        dst_endpoint=clean(
            {
                "ip": text(f, "s-ip"),
                "port": port(f, "cs-uri-port"),
                "hostname": host,
                "location": {"country": text(f, "x-s-country"), "city": text(f, "x-s-location")},
            }
        ),
        device=clean({"os_name": text(f, "x-c-os")}),
        policy=clean({"name": text(f, "x-policy-name")}),
    )
