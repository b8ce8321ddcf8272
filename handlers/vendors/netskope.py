"""Netskope: alerts and events (REST API v2 / Log Streaming JSON) and web transaction logs (W3C
space-separated or CSV lines, as Log Streaming writes them to S3)."""

from __future__ import annotations

import csv
import re
from typing import Any, Iterable, Iterator

from handlers.events import build
from handlers.outcomes import MALFORMED, Ignored, Rejected
from handlers.vendors._common import Context, clean, email, epoch_ms, get, hashes, parse_time, port, split_list, text

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
_METHODS = {"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7, "TRACE": 8}
_ACTIVITIES = {"create": 1, "upload": 1, "view": 2, "download": 2, "browse": 2, "edit": 3, "rename": 3,
               "delete": 4, "search": 5, "share": 8, "post": 1, "login attempt": 99}  # fmt: skip


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
    return "access_method" in record or "ur_normalized" in record or record.get("type") in _TYPES


def detect_text(text: str) -> bool:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.startswith("#Fields:") or (bool(_LINE.match(first)) and "http_transaction" in first)


def parse_text(payload: str) -> Iterator[Any]:
    from handlers.ingest import Line

    names: list[str] | None = None
    for line in payload.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = line.split(":", 1)[1].split()
            yield Line(line, None)  # a W3C directive, not an event
            continue
        delimiter = "," if re.match(r"^\d{4}-\d{2}-\d{2},", line) else " "
        try:
            row = next(csv.reader([line], delimiter=delimiter, quotechar='"', strict=True))
        except (csv.Error, StopIteration) as exc:
            raise Rejected(MALFORMED, f"not a Netskope transaction line: {exc}") from None
        columns = names or TRANSACTION_FIELDS
        fields = {name: value for name, value in zip(columns, row)}
        if names is None and len(row) > 100:
            fields["x-policy-action"], fields["x-policy-name"] = (row[i] for i in _POLICY_FROM_END)
        yield Line(line, fields)


def _user(record: dict[str, Any]) -> dict[str, Any] | None:
    name = text(record, "user") or text(record, "ur_normalized") or text(record, "userkey")
    if not name:
        return None
    return clean({"email_addr": email(name, text(record, "ur_normalized")), "name": name})


def _severity(record: dict[str, Any], default: int = 1) -> int:
    for field in ("severity", "dlp_rule_severity", "severity_level"):
        value = (text(record, field) or "").lower()
        mapped = {"low": 2, "med": 3, "medium": 3, "high": 4, "critical": 5, "info": 1, "informational": 1}.get(value)
        if mapped:
            return mapped
    return default


def _disposition(action: str | None) -> int | None:
    return {"block": 2, "allow": 1, "useralert": 19, "alert": 19, "detection": 15, "bypass": 1,
            "quarantine": 3}.get((action or "").lower()) if action else None  # fmt: skip


def _endpoints(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "src_endpoint": clean({"ip": text(record, "srcip"),
                               "location": {"country": text(record, "src_country"), "city": text(record, "src_location")}}),
        "dst_endpoint": clean({"ip": text(record, "dstip"), "port": port(record, "dstport") or None,
                               "location": {"country": text(record, "dst_country"), "city": text(record, "dst_location")}}),
        "device": clean({"hostname": text(record, "hostname"), "os_name": text(record, "os"), "ip": text(record, "userip")}),
    }  # fmt: skip


def normalize(record: Any, ctx: Context) -> list[dict[str, Any]]:
    from handlers.ingest import Line

    if isinstance(record, Line):
        if record.fields is None:
            raise Ignored("not_event: W3C directive line (#Software, #Version, #Fields)")
        return [_transaction(record.fields, ctx)]
    common = dict(uid=ctx.uid, tenant=ctx.tenant, vendor_name=VENDOR, vendor_uid=text(record, "_id"),
                  time_ms=epoch_ms(record.get("timestamp"), "timestamp"))  # fmt: skip
    kind, alert = text(record, "type") or "", (text(record, "alert_type") or "").lower()
    url = clean({"url_string": text(record, "url"), "hostname": text(record, "site") if "." in (text(record, "site") or "") else None,
                 "categories": split_list(get(record, "other_categories") or text(record, "category"))})  # fmt: skip
    file = clean({"name": text(record, "dlp_file") or text(record, "object") or text(record, "file_name"),
                  "path": text(record, "file_path"), "type": text(record, "file_type"), "size": get(record, "file_size") or None,
                  "hashes": hashes(text(record, "md5"), None, text(record, "sha256"))}) if text(record, "object_type") in (None, "File") else None  # fmt: skip
    policy = clean({"name": text(record, "policy"), "uid": (text(record, "policy_id") or "").split(" ")[0] or None})
    disposition = _disposition(text(record, "action"))
    activity = (text(record, "activity") or "").lower()
    shared = dict(user=_user(record), app_name=text(record, "app") or text(record, "appname"), policy=policy, **_endpoints(record))

    if alert == "dlp":
        return [build(**common, product="Netskope DLP", event_code=f"{kind}:dlp", class_uid=2006, activity_id=1,
                      activity_name="Create", severity_id=_severity(record, 3), disposition_id=disposition,
                      url=url, file=file, message=text(record, "dlp_rule") or text(record, "dlp_profile"),
                      finding_info=clean({"title": text(record, "dlp_profile") or "DLP policy violation",
                                          "types": split_list([t for t in (text(record, "dlp_rule"), text(record, "dlp_profile")) if t])}),
                      **shared)]  # fmt: skip
    if alert in ("malware", "malsite") or kind == "malsite":
        threat = text(record, "malware_name") or text(record, "alert_name") or text(record, "object") or alert
        site = clean({**(url or {}), "categories": split_list(get(record, "malsite_category")) or (url or {}).get("categories")})
        return [build(**common, product="Netskope Threat Protection", event_code=f"{kind}:{alert or kind}", class_uid=2004,
                      activity_id=1, activity_name="Create", severity_id=_severity(record, 3),
                      disposition_id=disposition or 15, url=site,
                      file=file if alert == "malware" else None,
                      malware=[clean({"name": threat, "classification": text(record, "malware_type") or alert})],
                      finding_info=clean({"title": "Malicious site" if alert == "malsite" else "Malware detected", "uid": text(record, "incident_id")}),
                      **shared)]  # fmt: skip
    if kind == "admin_audit_logs" or kind == "audit":
        what = text(record, "audit_log_event") or ""
        login = "login" in what.lower()
        return [build(**common, product="Netskope Admin Audit", event_code=f"{kind}:{what}",
                      class_uid=3002 if login else 6003, activity_id=1 if login else 99, activity_name=what or None,
                      severity_id=_severity(record, 1), status_id=2 if "fail" in what.lower() else 1 if login else None,
                      user=_user(record), src_endpoint=clean({"ip": (get(record, "supporting_data.data_values") or [None])[0]
                                                              if get(record, "supporting_data.data_type") == "user" else None}))]  # fmt: skip
    if kind == "connection":
        return [build(**common, product="Netskope SWG", event_code=kind, class_uid=4001, activity_id=1, activity_name="Open",
                      severity_id=1, disposition_id=disposition or 1, url=url, **shared)]  # fmt: skip
    if activity in _ACTIVITIES or kind in ("application", "nspolicy"):
        return [build(**common, product="Netskope CASB", event_code=f"{kind}:{activity or 'policy'}", class_uid=6001,
                      activity_id=_ACTIVITIES.get(activity, 99), activity_name=text(record, "activity"),
                      severity_id=_severity(record, 2 if disposition in (2, 19) else 1), disposition_id=disposition,
                      url=url, file=file, message=text(record, "policy"),
                      email=clean({"to": split_list(text(record, "to_user"))}), **shared)]  # fmt: skip
    if kind == "page":
        return [build(**common, product="Netskope SWG", event_code=kind, class_uid=4002, activity_id=99,
                      severity_id=1, disposition_id=disposition, url=url, **shared)]  # fmt: skip
    raise Ignored(f"unsupported_event_type: Netskope {kind or 'record'} {alert} carries no coaching signal".replace("  ", " "))


def _transaction(f: dict[str, Any], ctx: Context) -> dict[str, Any]:
    when = f.get("x-cs-timestamp")
    time_ms = epoch_ms(when, "x-cs-timestamp") if when and when != "-" else parse_time(f"{f.get('date')} {f.get('time')}", "date time")
    method = (text(f, "cs-method") or "").upper()
    host = text(f, "cs-host") or text(f, "cs-dns")
    scheme = text(f, "cs-uri-scheme")
    path = text(f, "cs-uri-path") or ""
    url = f"{scheme}://{host}{path}" if scheme and host else None
    action = (text(f, "x-policy-action") or "").lower()
    return build(
        uid=ctx.uid, tenant=ctx.tenant, vendor_name=VENDOR, product="Netskope SWG", time_ms=time_ms,
        event_code=text(f, "x-type") or "http_transaction", class_uid=4002,
        activity_id=_METHODS.get(method, 99), activity_name=method or None, severity_id=1,
        disposition_id=2 if action.startswith("block") else 1 if action else None,
        status_id=None, message=text(f, "x-policy-name"),
        user=clean({"email_addr": email(text(f, "cs-username")), "name": text(f, "cs-username")}),
        url=clean({"url_string": url, "hostname": host,
                   "categories": split_list([c for c in (text(f, "x-category"),) if c])}),
        app_name=text(f, "x-cs-app"),
        src_endpoint=clean({"ip": text(f, "c-ip"), "location": {"country": text(f, "x-c-country"), "city": text(f, "x-c-location")}}),
        dst_endpoint=clean({"ip": text(f, "s-ip"), "port": port(f, "cs-uri-port"), "hostname": host,
                            "location": {"country": text(f, "x-s-country"), "city": text(f, "x-s-location")}}),
        device=clean({"os_name": text(f, "x-c-os")}),
        policy=clean({"name": text(f, "x-policy-name")}),
    )  # fmt: skip
