"""CrowdStrike Falcon: Streaming API events, Alerts API (v2) resources and FDR records."""

from __future__ import annotations

from typing import Any, Iterable

from handlers.events import build
from handlers.outcomes import WRONG_TYPES, Ignored, Rejected
from handlers.vendors._common import (
    Context,
    basename,
    clean,
    email,
    epoch_ms,
    get,
    hashes,
    integer,
    parse_time,
    port,
    require,
    split_list,
    text,
)

SOURCE = "crowdstrike"
VENDOR = "CrowdStrike"
SERVICE_SIDS = {"S-1-5-18": "LocalSystem", "S-1-5-19": "LocalService", "S-1-5-20": "NetworkService"}


def records(payload: Any) -> Iterable[Any]:
    """Alerts API responses wrap alerts in ``resources``; everything else is one record per item."""
    if isinstance(payload, dict) and isinstance(payload.get("resources"), list):
        yield from payload["resources"]
    elif isinstance(payload, list):
        yield from payload
    else:
        yield payload


def detect(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if isinstance(record.get("metadata"), dict) and "eventType" in record["metadata"] and "event" in record:
        return True
    if "event_simpleName" in record or ("aid" in record and "cid" in record):
        return True
    return "composite_id" in record and ("cid" in record or "agent_id" in record)


def normalize(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    if isinstance(record.get("metadata"), dict) and "event" in record:
        return [_streaming(record, ctx.tenant, ctx.uid)]
    if "composite_id" in record:
        return [_alert(record, ctx.tenant, ctx.uid)]
    return [_fdr(record, ctx.tenant, ctx.uid)]


# --- shared mappings ------------------------------------------------------------------------------


def _severity(value: Any, name: str | None) -> int:
    names = {"informational": 1, "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
    if name and name.lower() in names:
        return names[name.lower()]
    if value is None or value == "" or isinstance(value, bool):
        return 0
    score = float(value)
    if score <= 5:  # the legacy 1-5 scale
        return max(0, int(score))
    return _from_score(score)  # the 0-100 scale of EPP/XDR events and the Alerts API


def _from_score(score: float) -> int:
    return 5 if score >= 80 else 4 if score >= 60 else 3 if score >= 40 else 2 if score >= 20 else 1


def _user(name: str | None, domain: str | None = None, principal: str | None = None) -> dict[str, Any] | None:
    if not name and not principal:
        return None
    if name and "\\" in name:
        domain, name = name.split("\\", 1)
    return clean({"name": name, "domain": domain or None, "email_addr": email(principal, name)})


def _disposition(flags: Any, description: str | None) -> int:
    """OCSF disposition from Falcon's pattern disposition: what the sensor actually did."""
    would_have = bool(description and "would have" in description.lower())
    if isinstance(flags, dict) and not flags.get("PolicyDisabled") and not would_have:
        if any(flags.get(k) for k in ("QuarantineFile", "QuarantineMachine", "ContainmentFileSystem")):
            return 3  # Quarantined
        if any(flags.get(k) for k in ("KillProcess", "KillParent", "KillSubProcess", "OperationBlocked",
                                      "ProcessBlocked", "RegistryOperationBlocked")):  # fmt: skip
            return 2  # Blocked
    if description and not would_have and any(w in description.lower() for w in ("blocked", "killed", "quarantined")):
        return 2
    return 15  # Detected


# --- Streaming API --------------------------------------------------------------------------------

_DETECTIONS = {"DetectionSummaryEvent", "EppDetectionSummaryEvent", "MobileDetectionSummaryEvent", "XdrDetectionSummaryEvent"}


def _streaming(record: dict[str, Any], tenant: str, uid: str) -> dict[str, Any]:
    meta, ev = record["metadata"], record["event"]
    if not isinstance(ev, dict):
        raise Rejected(WRONG_TYPES, f"field 'event' must be an object, got {type(ev).__name__}")
    kind = text(meta, "eventType") or ""
    created = epoch_ms(require(meta, "eventCreationTime"), "metadata.eventCreationTime")
    common = dict(uid=uid, tenant=tenant, vendor_name=VENDOR, time_ms=created, event_code=kind)

    if kind in _DETECTIONS:
        mobile = (get(ev, "MobileNetworkConnections") or [{}])[0] if kind == "MobileDetectionSummaryEvent" else {}
        prevented = text(ev, "NetworkDetectionType") == "prevented"
        url = text(mobile, "Url") if isinstance(mobile, dict) else None
        return build(
            **common,
            product=text(ev, "SourceProducts") or "Falcon",
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=_severity(get(ev, "Severity"), text(ev, "SeverityName")),
            disposition_id=2 if prevented else _disposition(get(ev, "PatternDispositionFlags"), text(ev, "PatternDispositionDescription")),
            vendor_uid=text(ev, "CompositeId") or text(ev, "DetectId"),
            message=text(ev, "DetectDescription") or text(ev, "Description"),
            user=_user(text(ev, "UserName"), text(ev, "MachineDomain") or text(ev, "LogonDomain")),
            device=clean(
                {
                    "hostname": text(ev, "ComputerName") or text(ev, "Hostname"),
                    "ip": text(ev, "LocalIP"),
                    "uid": text(ev, "SensorId") or text(ev, "AgentId"),
                }
            ),  # fmt: skip
            file=clean(
                {
                    "name": text(ev, "FileName"),
                    "path": text(ev, "FilePath"),
                    "hashes": hashes(text(ev, "MD5String"), text(ev, "SHA1String"), text(ev, "SHA256String")),
                }
            ),  # fmt: skip
            process=clean({"name": text(ev, "FileName"), "cmd_line": text(ev, "CommandLine")}),
            url=clean({"url_string": url, "hostname": text(ev, "IOCValue") if text(ev, "IOCType") == "domain" else None}),
            app_name=text(ev, "ApplicationName"),
            finding_info=clean(
                {
                    "title": text(ev, "DetectName") or text(ev, "Name"),
                    "uid": text(ev, "DetectId") or text(ev, "CompositeId"),
                    "types": split_list(
                        [t for t in (text(ev, "Tactic") or text(ev, "Tactics"), text(ev, "Technique") or text(ev, "Techniques")) if t]
                    ),
                }
            ),
        )
    if kind == "IncidentSummaryEvent":
        score = get(ev, "FineScore")  # 0-10
        severity = _from_score(score * 10) if isinstance(score, (int, float)) and not isinstance(score, bool) else 0
        return build(
            **common,
            product="Falcon",
            class_uid=2005,
            activity_id=1,
            activity_name="Create",
            severity_id=severity,
            vendor_uid=text(ev, "IncidentID"),
            device=clean({"uid": text(ev, "HostID")}),
            finding_info=clean({"title": "Falcon incident", "uid": text(ev, "IncidentID")}),
        )
    if kind == "IdentityProtectionEvent":
        return build(
            **common,
            product="Falcon Identity Protection",
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=_severity(get(ev, "Severity"), text(ev, "SeverityName")),
            disposition_id=15,
            vendor_uid=text(ev, "IdentityProtectionIncidentId"),
            message=text(ev, "IncidentDescription"),
            user=_user(text(ev, "UserName")),
            device=clean({"hostname": text(ev, "EndpointName"), "ip": text(ev, "EndpointIp")}),
            finding_info=clean(
                {
                    "title": text(ev, "IncidentType"),
                    "uid": text(ev, "IdentityProtectionIncidentId"),
                    "types": split_list(text(ev, "Category")),
                }
            ),  # fmt: skip
        )
    if kind == "AutomatedLeadSummaryEvent":
        indicators = [i for i in get(ev, "ThreatgraphIndicators") or [] if isinstance(i, dict)]
        first = indicators[0] if indicators else {}
        tactics = [text(m, "Tactic") for m in get(ev, "MitreAttack") or [] if isinstance(m, dict)]
        return build(
            **common,
            product="Falcon",
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=_severity(get(ev, "Score"), None),
            disposition_id=15,
            vendor_uid=text(ev, "CompositeId"),
            message=text(first, "Description"),
            device=clean({"hostname": text(first, "Hostname"), "uid": text(first, "HostId")}),
            finding_info=clean(
                {"title": text(ev, "Name"), "uid": text(ev, "LeadId"), "types": split_list(sorted({t for t in tactics if t}))}
            ),  # fmt: skip
        )
    if kind == "AuthActivityAuditEvent":
        operation = text(ev, "OperationName") or ""
        if operation in ("streamStarted", "streamStopped"):
            raise Ignored(f"not_behaviour: Streaming API control record ({operation})")
        return build(
            **{**common, "time_ms": epoch_ms(get(ev, "UTCTimestamp") or created, "event.UTCTimestamp")},
            product=text(ev, "ServiceName") or "Falcon",
            class_uid=3002,
            activity_id=1,
            activity_name=operation or "Logon",
            severity_id=1,
            status_id=_success(ev),
            user=_user(text(ev, "UserId"), principal=text(ev, "UserId")),
            src_endpoint=clean({"ip": text(ev, "UserIp")}),
        )
    if kind in ("UserActivityAuditEvent", "APIActivityAuditEvent"):
        user_id = text(ev, "UserId")
        if not user_id:
            raise Ignored(f"not_behaviour: {kind} by an API client, not a person")
        operation = text(ev, "OperationName") or ""
        activity = 1 if "create" in operation else 3 if "update" in operation else 4 if "delete" in operation else 99
        return build(
            **{**common, "time_ms": epoch_ms(get(ev, "UTCTimestamp") or created, "event.UTCTimestamp")},
            product=text(ev, "ServiceName") or "Falcon",
            class_uid=6003,
            activity_id=activity,
            activity_name=operation or None,
            severity_id=1,
            status_id=_success(ev) if "Success" in ev else None,
            user=_user(user_id, principal=user_id),
            src_endpoint=clean({"ip": text(ev, "UserIp")}),
        )
    if kind == "FirewallMatchEvent":
        inbound = text(ev, "ConnectionDirection") == "1"
        local = {"ip": text(ev, "LocalAddress"), "port": port(ev, "LocalPort")}
        remote = {"ip": text(ev, "RemoteAddress"), "port": port(ev, "RemotePort")}
        blocked = text(ev, "RuleAction") == "2"
        return build(
            **{**common, "time_ms": parse_time(get(ev, "Timestamp") or created, "event.Timestamp")},
            product="Falcon Firewall Management",
            class_uid=4001,
            activity_id=5 if blocked else 6,
            activity_name="Refuse" if blocked else "Traffic",
            severity_id=1,
            disposition_id=2 if blocked else 1,
            message=text(ev, "RuleName"),
            device=clean({"hostname": text(ev, "HostName"), "uid": text(ev, "DeviceId"), "os_name": text(ev, "Platform")}),
            src_endpoint=clean(remote if inbound else local),
            dst_endpoint=clean(local if inbound else remote),
            process=clean({"name": text(ev, "ImageFileName"), "cmd_line": text(ev, "CommandLine")}),
            policy=clean({"name": text(ev, "PolicyName"), "uid": text(ev, "PolicyID")}),
        )
    raise Ignored(f"unsupported_event_type: CrowdStrike streaming event {kind or '(none)'} carries no coaching signal")


def _success(ev: dict[str, Any]) -> int:
    success = get(ev, "Success")
    if isinstance(success, bool):
        return 1 if success else 2
    return 0


# --- Alerts API (v2) ------------------------------------------------------------------------------


def _alert(record: dict[str, Any], tenant: str, uid: str) -> dict[str, Any]:
    device = record.get("device") if isinstance(record.get("device"), dict) else {}
    when = record.get("timestamp") or record.get("created_timestamp")
    return build(
        uid=uid,
        tenant=tenant,
        vendor_name=VENDOR,
        product=text(record, "product") or "Falcon",
        time_ms=parse_time(when, "timestamp"),
        event_code=f"Alert:{text(record, 'type') or 'unknown'}",
        vendor_uid=text(record, "composite_id"),
        class_uid=2004,
        activity_id=1,
        activity_name="Create",
        severity_id=_severity(get(record, "severity"), text(record, "severity_name")),
        disposition_id=_disposition(get(record, "pattern_disposition_details"), text(record, "pattern_disposition_description")),
        message=text(record, "description"),
        user=_user(text(record, "user_name"), principal=text(record, "user_principal")),
        device=clean(
            {
                "hostname": text(device, "hostname"),
                "ip": text(device, "local_ip"),
                "uid": text(device, "device_id") or text(record, "agent_id"),
                "os_name": text(device, "platform_name"),
            }
        ),  # fmt: skip
        file=clean(
            {
                "name": text(record, "filename"),
                "path": text(record, "filepath"),
                "hashes": hashes(text(record, "md5"), text(record, "sha1"), text(record, "sha256")),
            }
        ),  # fmt: skip
        process=clean({"name": text(record, "filename"), "cmd_line": text(record, "cmdline")}),
        finding_info=clean(
            {
                "title": text(record, "display_name") or text(record, "name"),
                "uid": text(record, "composite_id"),
                "types": split_list([t for t in (text(record, "tactic"), text(record, "technique")) if t]),
            }
        ),  # fmt: skip
    )


# --- Falcon Data Replicator -----------------------------------------------------------------------


def _fdr(record: dict[str, Any], tenant: str, uid: str) -> dict[str, Any]:
    name = text(record, "event_simpleName")
    if not name:
        if record.get("event_type") == "ZeroTrustHostAssessment" or "assessments" in record:
            raise Ignored("not_behaviour: Zero Trust host assessment (device posture, not an action)")
        if "InterfaceAlias" in record or "MAC" in record:
            raise Ignored("not_behaviour: FDR asset inventory record (network interface)")
        raise Ignored("unsupported_event_type: FDR record without event_simpleName")
    when = record.get("timestamp") or record.get("ContextTimeStamp") or record.get("_time")
    common = dict(uid=uid, tenant=tenant, vendor_name=VENDOR, product="Falcon Data Replicator",
                  time_ms=epoch_ms(when, "timestamp"), event_code=name, vendor_uid=text(record, "id"))  # fmt: skip
    device = clean({"uid": text(record, "aid"), "ip": text(record, "LocalAddressIP4"),
                    "hostname": text(record, "ComputerName"), "os_name": text(record, "event_platform")})  # fmt: skip
    user = _user(text(record, "UserName"), principal=text(record, "UserPrincipal"))
    sid = text(record, "UserSid")
    if name in ("ProcessRollup2", "SyntheticProcessRollup2"):
        if sid in SERVICE_SIDS and not user:
            raise Ignored(f"not_behaviour: process started by the {SERVICE_SIDS[sid]} service account")
        return build(
            **common,
            class_uid=1007,
            activity_id=1,
            activity_name="Launch",
            severity_id=1,
            device=device,
            user=user or clean({"uid": sid}),
            process=clean(
                {
                    "name": basename(text(record, "ImageFileName")),
                    "cmd_line": text(record, "CommandLine"),
                    "pid": integer(record, "RawProcessId"),
                }
            ),  # fmt: skip
            file=clean(
                {
                    "path": text(record, "ImageFileName"),
                    "hashes": hashes(text(record, "MD5HashData"), text(record, "SHA1HashData"), text(record, "SHA256HashData")),
                }
            ),  # fmt: skip
        )
    if name == "DnsRequest":
        return build(
            **common,
            class_uid=4003,
            activity_id=1,
            activity_name="Query",
            severity_id=1,
            device=device,
            user=user,
            query=clean({"hostname": require(record, "DomainName"), "type": text(record, "RequestType")}),
        )
    if name in ("NetworkConnectIP4", "NetworkConnectIP6"):
        suffix = name[-1]
        return build(
            **common,
            class_uid=4001,
            activity_id=1,
            activity_name="Open",
            severity_id=1,
            device=device,
            user=user,
            src_endpoint=clean({"ip": text(record, f"LocalAddressIP{suffix}"), "port": port(record, "LocalPort")}),
            dst_endpoint=clean({"ip": text(record, f"RemoteAddressIP{suffix}"), "port": port(record, "RemotePort")}),
        )
    if name.startswith("ScriptControl"):
        return build(
            **common,
            class_uid=1007,
            activity_id=99,
            activity_name="Script Content Scanned",
            severity_id=1,
            device=device,
            user=user,
            process=clean({"name": basename(text(record, "ImageFileName")), "cmd_line": text(record, "CommandLine")}),  # fmt: skip
            file=clean(
                {
                    "name": basename(text(record, "ScriptContentName")),
                    "path": text(record, "ScriptContentName"),
                    "hashes": hashes(sha256=text(record, "ContentSHA256HashData")),
                }
            ),  # fmt: skip
        )
    raise Ignored(f"unsupported_event_type: FDR {name} carries no coaching signal")
