"""Zscaler: ZIA NSS feeds (web, firewall, DNS, admin audit, CASB, tunnel) and ZPA LSS user activity.

NSS feeds are JSON; the feed format decides the envelope. The common Splunk-HEC style wraps each
record as ``{"sourcetype": "zscalernss-web", "event": {...}}``; bare records are recognised by their
fields. Values for "no value" vary ("None", "NA", "N/A", " ") and some fields are URL-encoded.
"""

from __future__ import annotations

from typing import Any

from handlers.events import Header, build
from handlers.ocsf import API_ACTIVITY, HTTP_ACTIVITY, OTHER
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event
from handlers.vendors.fields import clean, each, email, parse_time, port, require, split_list, text, unquote

SOURCE = "zscaler"
VENDOR = "Zscaler"
_ZPA_KEYS = {"ConnectionID", "ConnectionStatus"}

records = each


def _kind(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(feed kind, the record's fields)."""
    if isinstance(record.get("event"), dict) and str(record.get("sourcetype", "")).startswith("zscalernss-"):
        return str(record["sourcetype"]).removeprefix("zscalernss-"), record["event"]
    if _ZPA_KEYS <= set(record):
        return "zpa", record
    fields = set(record)
    for kind, marker in (
        ("web", "urlcategory"),
        ("dns", "dns_req"),
        ("fw", "nwsvc"),
        ("audit", "auditlogtype"),
        ("tunnel", "tunneltype"),
        ("casb", "applicationname"),
    ):
        if marker in fields:
            return kind, record
    return "", record


def detect(record: Any) -> bool:
    return isinstance(record, dict) and bool(_kind(record)[0])


def _time(ev: dict[str, Any], ctx: Context, *names: str) -> int:
    for name in names:
        if text(ev, name):
            return parse_time(ev[name], name)
    return ctx.received_ms  # CASB records carry no time of their own


def _user(ev: dict[str, Any], *names: str) -> dict[str, Any] | None:
    for name in names:
        value = unquote(text(ev, name))
        if value:
            return clean({"email_addr": email(value), "name": value})
    return None


def _disposition(action: str | None) -> int | None:
    if not action:
        return None
    action = action.lower().removeprefix("req_").removeprefix("res_")  # DNS logs: REQ_ALLOW, RES_BLOCK
    if action.startswith(("allow", "permit")):
        return 1
    if action.startswith(("block", "drop", "deny", "reject")):
        return 2
    return OTHER


def _threat(ev: dict[str, Any]) -> list[dict[str, Any]] | None:
    name = text(ev, "threatname")
    threat = clean({"name": name, "classification": text(ev, "threatcategory") or text(ev, "threatcat")})
    return [threat] if name and threat else None


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    kind, ev = _kind(record)
    code = "zpa-user-activity" if kind == "zpa" else f"zscalernss-{kind}"
    device = clean({"hostname": text(ev, "devicehostname"), "os_name": text(ev, "deviceostype")})
    threat = _threat(ev)

    def header(product: str, *times: str) -> Header:
        return Header(VENDOR, product, _time(ev, ctx, *times), code)

    if kind == "web":
        protocol = (text(ev, "protocol") or "").upper()
        url = text(ev, "url")
        scheme = "https" if protocol in ("HTTPS", "SSL") else "http" if protocol == "HTTP" else None
        method = (text(ev, "requestmethod") or "").upper()
        disposition = _disposition(text(ev, "action"))
        categories = split_list([c for c in (text(ev, "urlcategory"), text(ev, "urlsupercategory")) if c])
        return [
            build(
                ctx,
                Header(VENDOR, "Zscaler Internet Access", _time(ev, ctx, "datetime", "time"), code, text(ev, "event_id")),
                class_uid=4002,
                activity_id=HTTP_ACTIVITY.get(method, OTHER),
                activity_name=method or None,
                severity_id=4 if threat else 2 if disposition == 2 else 1,
                disposition_id=disposition,
                message=text(ev, "reason"),
                user=_user(ev, "user", "login"),
                device=device,
                url=clean(
                    {
                        "url_string": f"{scheme}://{url}" if scheme and url else url,
                        "hostname": text(ev, "hostname"),
                        "categories": categories,
                    }
                ),
                app_name=text(ev, "appname"),
                src_endpoint=clean({"ip": text(ev, "ClientIP") or text(ev, "cip")}),
                dst_endpoint=clean({"ip": text(ev, "serverip") or text(ev, "sip"), "hostname": text(ev, "hostname")}),
                malware=threat,
                file=clean({"type": text(ev, "filetype")}),
                policy=clean({"name": unquote(text(ev, "ruletype")) or unquote(text(ev, "urlfilterrulelabel"))}),
            )
        ]
    if kind == "fw":
        disposition = _disposition(text(ev, "action"))
        return [
            build(
                ctx,
                header("Zscaler Internet Access Firewall", "datetime", "time"),
                class_uid=4001,
                activity_id=5 if disposition == 2 else 6,
                activity_name="Refuse" if disposition == 2 else "Traffic",
                severity_id=4 if threat else 1,
                disposition_id=disposition,
                user=_user(ev, "user", "login"),
                device=device,
                src_endpoint=clean({"ip": text(ev, "csip"), "port": port(ev, "csport")}),
                dst_endpoint=clean({"ip": text(ev, "cdip"), "port": port(ev, "cdport"), "location": {"country": text(ev, "destcountry")}}),
                app_name=text(ev, "nwapp"),
                policy=clean({"name": unquote(text(ev, "rulelabel"))}),
                malware=threat,
            )
        ]
    if kind == "dns":
        hostname = require(ev, "dns_req")
        return [
            build(
                ctx,
                header("Zscaler Internet Access DNS", "datetime", "time"),
                class_uid=4003,
                activity_id=1,
                activity_name="Query",
                severity_id=1,
                disposition_id=_disposition(text(ev, "reqaction") or text(ev, "resaction")),
                user=_user(ev, "user", "login"),
                device=device,
                query=clean({"hostname": hostname, "type": text(ev, "dns_reqtype")}),
                url=clean({"hostname": hostname, "categories": split_list(text(ev, "category"))}),
                src_endpoint=clean({"ip": text(ev, "clt_sip")}),
                dst_endpoint=clean({"ip": text(ev, "srv_dip"), "port": port(ev, "srv_dport")}),
                policy=clean({"name": unquote(text(ev, "reqrulelabel"))}),
            )
        ]
    if kind == "audit":
        action = (text(ev, "action") or "").upper()
        result = (text(ev, "result") or "").upper()
        status = 1 if result == "SUCCESS" else 2 if result == "FAILURE" else 0
        audit = header("Zscaler Admin Audit", "time", "datetime")
        admin, client = _user(ev, "adminid"), clean({"ip": text(ev, "clientip")})
        if action in ("SIGN_IN", "SIGN_OUT"):
            return [
                build(
                    ctx,
                    audit,
                    class_uid=3002,
                    activity_id=1 if action == "SIGN_IN" else 2,
                    activity_name=action.replace("_", " ").title(),
                    severity_id=1,
                    status_id=status,
                    user=admin,
                    src_endpoint=client,
                )
            ]
        return [
            build(
                ctx,
                audit,
                class_uid=6003,
                activity_id=API_ACTIVITY.get(action.lower(), OTHER),
                activity_name=action.title() or None,
                severity_id=1,
                status_id=status,
                user=admin,
                message=text(ev, "category"),
                src_endpoint=client,
            )
        ]
    if kind == "casb":
        return [
            build(
                ctx,
                header("Zscaler CASB", "datetime", "time"),
                class_uid=6001,
                activity_id=OTHER,
                activity_name=text(ev, "action") or "SaaS Activity",
                severity_id=1,
                user=_user(ev, "login", "user"),
                app_name=text(ev, "applicationname"),
                file=clean({"name": text(ev, "object_name_1")}),
            )
        ]
    if kind == "tunnel":
        raise Ignored(IgnoreReason.NOT_BEHAVIOUR, "tunnel telemetry describes network infrastructure, not a person")
    if kind == "zpa":
        connection = (text(ev, "ConnectionStatus") or "").lower()
        reason = text(ev, "InternalReason")
        failed = bool(reason) or connection in ("failed", "error")
        return [
            build(
                ctx,
                Header(
                    VENDOR,
                    "Zscaler Private Access",
                    _time(ev, ctx, "LogTimestamp", "TimestampConnectionStart"),
                    code,
                    text(ev, "ConnectionID"),
                ),
                class_uid=4001,
                activity_id=2 if connection == "close" else 1,
                activity_name=connection.title() or None,
                severity_id=1,
                disposition_id=2 if failed else 1,
                message=reason,
                user=_user(ev, "Username"),
                app_name=text(ev, "Application"),
                src_endpoint=clean({"ip": text(ev, "ClientPublicIP")}),
                dst_endpoint=clean({"hostname": text(ev, "Host"), "port": port(ev, "ServerPort")}),
                policy=clean({"name": text(ev, "Policy") or text(ev, "PolicyName")}),
            )
        ]
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, "Zscaler record of an unknown feed")
