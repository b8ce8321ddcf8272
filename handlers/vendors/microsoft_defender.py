"""Microsoft Defender: M365 Defender streaming API records (advanced hunting tables, via Event Hub
or storage: ``{"category": "AdvancedHunting-<Table>", "properties": {...}}``, batches wrapped in
``records``), Microsoft Graph security alerts (v2) and Defender for Endpoint API alerts (both wrapped
in ``value``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import OTHER, severity_by_name
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event
from handlers.vendors.fields import clean, email, get, hashes, parse_time, port, split_list, text

SOURCE = "microsoft_defender"
VENDOR = "Microsoft"
SERVICE_SIDS = {"S-1-5-18", "S-1-5-19", "S-1-5-20"}
ENDPOINT = "Microsoft Defender for Endpoint"
OFFICE = "Microsoft Defender for Office 365"


def records(payload: Any) -> Iterable[Any]:
    if isinstance(payload, dict):
        for wrapper in ("records", "value"):
            if isinstance(payload.get(wrapper), list):
                yield from payload[wrapper]
                return
    yield from payload if isinstance(payload, list) else [payload]


def _is_alert(record: dict[str, Any]) -> bool:
    return "title" in record and "severity" in record and ("createdDateTime" in record or "alertCreationTime" in record)


def detect(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    hunting = str(record.get("category", "")).startswith("AdvancedHunting-") and isinstance(record.get("properties"), dict)
    return hunting or _is_alert(record)


def _json_field(value: Any) -> Any:
    """AdditionalFields and friends arrive as JSON inside a string."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _account(p: dict[str, Any], prefix: str = "") -> dict[str, Any] | None:
    upn = text(p, f"{prefix}AccountUpn")
    name = text(p, f"{prefix}AccountName") or text(p, f"{prefix}AccountDisplayName")
    return clean(
        {
            "email_addr": email(upn),
            "name": name or upn,
            "domain": text(p, f"{prefix}AccountDomain"),
            "uid": text(p, f"{prefix}AccountObjectId") or text(p, f"{prefix}AccountSid"),
        }
    )


def _severity(value: str | None) -> int:
    return severity_by_name(value) or 0


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    if _is_alert(record):
        return [_api_alert(record, ctx)]
    table = record["category"].removeprefix("AdvancedHunting-")
    p = record["properties"]
    when = parse_time(p.get("Timestamp") or record.get("time"), "properties.Timestamp")
    vendor_uid = text(p, "ReportId") or text(p, "AlertId")

    def header(product: str) -> Header:
        return Header(VENDOR, product, when, table, vendor_uid)

    device = clean({"hostname": text(p, "DeviceName"), "uid": text(p, "DeviceId")})
    action = text(p, "ActionType") or ""

    if table in ("AlertInfo", "AlertEvidence"):
        extra = _json_field(p.get("AdditionalFields"))
        categories = _json_field(p.get("Categories")) or text(p, "Category")
        process_name = text(p, "FileName") if text(p, "EntityType") == "Process" else None
        return [
            build(
                ctx,
                header(text(p, "ServiceSource") or "Microsoft Defender XDR"),
                class_uid=2004,
                activity_id=1,
                activity_name="Create",
                severity_id=_severity(text(p, "Severity")),
                disposition_id=15,
                message=text(p, "Title"),
                user=_account(p),
                device=device,
                file=clean(
                    {
                        "name": text(p, "FileName"),
                        "path": text(p, "FolderPath"),
                        "size": p.get("FileSize"),
                        "hashes": hashes(sha1=text(p, "SHA1"), sha256=text(p, "SHA256")),
                    }
                ),
                process=clean({"cmd_line": text(p, "ProcessCommandLine"), "name": process_name}),
                url=clean({"url_string": text(p, "RemoteUrl") or (extra.get("Url") if isinstance(extra, dict) else None)}),
                finding_info=clean(
                    {
                        "title": text(p, "Title"),
                        "uid": text(p, "AlertId"),
                        "types": split_list(categories if isinstance(categories, list) else [categories] if categories else None),
                    }
                ),
            )
        ]
    if table == "DeviceProcessEvents":
        return [
            build(
                ctx,
                header(ENDPOINT),
                class_uid=1007,
                activity_id=1,
                activity_name="Launch",
                severity_id=1,
                user=_account(p),
                device=device,
                process=clean({"name": text(p, "FileName"), "cmd_line": text(p, "ProcessCommandLine"), "pid": p.get("ProcessId")}),
                file=clean(
                    {
                        "name": text(p, "FileName"),
                        "path": text(p, "FolderPath"),
                        "hashes": hashes(text(p, "MD5"), text(p, "SHA1"), text(p, "SHA256")),
                    }
                ),
            )
        ]
    if table == "DeviceRegistryEvents":
        if text(p, "InitiatingProcessAccountSid") in SERVICE_SIDS:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, "registry change made by a system account's process")
        return [
            build(
                ctx,
                header(ENDPOINT),
                class_uid=201004,
                activity_id={"RegistryValueSet": 2, "RegistryValueDeleted": 4}.get(action, OTHER),
                activity_name=action or None,
                severity_id=1,
                user=_account(p, "InitiatingProcess"),
                device=device,
                process=clean({"name": text(p, "InitiatingProcessFileName"), "cmd_line": text(p, "InitiatingProcessCommandLine")}),
                message=f"{text(p, 'RegistryKey')}\\{text(p, 'RegistryValueName')}" if text(p, "RegistryKey") else None,
            )
        ]
    if table == "DeviceEvents":
        extra = _json_field(p.get("AdditionalFields"))
        script = extra.get("ScriptContent") if isinstance(extra, dict) else None
        return [
            build(
                ctx,
                header(ENDPOINT),
                class_uid=1007,
                activity_id=OTHER,
                activity_name=action or None,
                severity_id=1,
                user=_account(p, "InitiatingProcess"),
                device=device,
                process=clean({"cmd_line": script or text(p, "InitiatingProcessCommandLine"), "pid": p.get("InitiatingProcessId")}),
                file=clean({"hashes": hashes(sha256=text(p, "SHA256"))}),
            )
        ]
    if table in ("IdentityLogonEvents", "DeviceLogonEvents"):
        failed = action == "LogonFailed"
        return [
            build(
                ctx,
                header("Microsoft Defender for Identity" if table.startswith("Identity") else ENDPOINT),
                class_uid=3002,
                activity_id=1,
                activity_name=text(p, "LogonType") or "Logon",
                severity_id=1,
                status_id=2 if failed else 1 if action == "LogonSuccess" else OTHER,
                message=text(p, "FailureReason"),
                user=_account(p),
                device=device,
                app_name=text(p, "Application"),
                src_endpoint=clean({"ip": text(p, "IPAddress") or text(p, "RemoteIP"), "port": port(p, "Port")}),
                dst_endpoint=clean(
                    {
                        "ip": text(p, "DestinationIPAddress"),
                        "hostname": text(p, "DestinationDeviceName"),
                        "port": port(p, "DestinationPort"),
                    }
                ),
            )
        ]
    if table == "UrlClickEvents":
        threats = split_list(text(p, "ThreatTypes"))
        through = p.get("IsClickedThrough") is True
        return [
            build(
                ctx,
                header(OFFICE),
                class_uid=4010,
                activity_id=OTHER,
                activity_name="Click Through" if through else "Click",
                severity_id=4 if threats else 1,
                disposition_id=2 if action.startswith("ClickBlocked") else 1,
                message="clicked through a Safe Links warning" if through else None,
                user=_account(p),
                url=clean({"url_string": text(p, "Url")}),
                src_endpoint=clean({"ip": text(p, "IPAddress")}),
                email=clean({"uid": text(p, "NetworkMessageId")}),
                malware=[{"name": t} for t in threats] if threats else None,
            )
        ]
    if table == "EmailEvents":
        threats = split_list(text(p, "ThreatTypes"))
        inbound = text(p, "EmailDirection") != "Outbound"
        recipient = text(p, "RecipientEmailAddress")
        sender = text(p, "SenderFromAddress") or text(p, "SenderMailFromAddress")
        delivery = (text(p, "DeliveryAction") or "").lower()
        return [
            build(
                ctx,
                header(OFFICE),
                class_uid=4009,
                activity_id=2 if inbound else 1,
                activity_name="Receive" if inbound else "Send",
                severity_id=4 if threats else 1,
                disposition_id={"delivered": 1, "blocked": 2, "junked": 3, "replaced": OTHER}.get(delivery),
                user=clean({"email_addr": email(recipient if inbound else sender), "uid": text(p, "RecipientObjectId")}),
                actor=clean({"email_addr": email(sender)}) if inbound else None,
                email=clean(
                    {
                        "subject": text(p, "Subject"),
                        "from": sender,
                        "to": [recipient] if recipient else None,
                        "uid": text(p, "InternetMessageId"),
                    }
                ),
                src_endpoint=clean({"ip": text(p, "SenderIPv4") or text(p, "SenderIPv6")}),
                finding_info=clean({"types": threats}),
                policy=clean({"name": text(p, "OrgLevelPolicy")}),
            )
        ]
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"advanced hunting table {table} carries no coaching signal")


def _api_alert(a: dict[str, Any], ctx: Context) -> Event:
    """Graph security alerts v2 and Defender for Endpoint API alerts."""
    evidence = [e for e in a.get("evidence") or [] if isinstance(e, dict)]
    upn = next((get(e, "userAccount.userPrincipalName") for e in evidence if get(e, "userAccount.userPrincipalName")), None)
    related = a.get("relatedUser") if isinstance(a.get("relatedUser"), dict) else {}
    host = next((e.get("deviceDnsName") for e in evidence if e.get("deviceDnsName")), None) or text(a, "computerDnsName")
    url = next((e.get("url") for e in evidence if e.get("url")), None)
    status = (text(a, "status") or "").lower()
    product = text(a, "serviceSource") or text(a, "detectionSource") or "Microsoft Defender"
    when = parse_time(a.get("createdDateTime") or a.get("alertCreationTime"), "createdDateTime")
    return build(
        ctx,
        Header(VENDOR, product, when, "alert", text(a, "id")),
        class_uid=2004,
        activity_id=1,
        activity_name="Create",
        severity_id=_severity(text(a, "severity")),
        disposition_id=15,
        message=text(a, "description") or text(a, "title"),
        user=clean(
            {
                "email_addr": email(upn, text(related, "userPrincipalName")),
                "name": upn or text(related, "userName"),
                "domain": text(related, "domainName"),
            }
        ),
        device=clean({"hostname": host}),
        url=clean({"url_string": url}),
        finding_info=clean(
            {
                "title": text(a, "title"),
                "uid": text(a, "id"),
                "types": split_list([t for t in (text(a, "category"), status if status == "resolved" else None) if t]),
            }
        ),
    )
