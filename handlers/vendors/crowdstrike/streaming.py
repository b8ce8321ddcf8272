"""CrowdStrike Falcon Streaming API events: ``{"metadata": {"eventType", "eventCreationTime", ...},
"event": {...}}``: detections, incidents, identity protection, automated leads, audit events and
host firewall matches."""

from __future__ import annotations

from typing import Any

from handlers.events import Header, build
from handlers.ocsf import api_activity, severity_from_score
from handlers.outcomes import Ignored, IgnoreReason, Rejected, RejectReason
from handlers.records import Context, Event
from handlers.vendors.crowdstrike.falcon import VENDOR, disposition, severity, user
from handlers.vendors.fields import clean, epoch_ms, get, hashes, parse_time, port, require, split_list, text

_DETECTIONS = {"DetectionSummaryEvent", "EppDetectionSummaryEvent", "MobileDetectionSummaryEvent", "XdrDetectionSummaryEvent"}


def has_envelope(record: dict[str, Any]) -> bool:
    return isinstance(record.get("metadata"), dict) and "event" in record


def detect(record: dict[str, Any]) -> bool:
    return has_envelope(record) and "eventType" in record["metadata"]


def _success(ev: dict[str, Any]) -> int:
    success = get(ev, "Success")
    if isinstance(success, bool):
        return 1 if success else 2
    return 0


def normalize(record: dict[str, Any], ctx: Context) -> Event:
    meta, ev = record["metadata"], record["event"]
    if not isinstance(ev, dict):
        raise Rejected(RejectReason.WRONG_TYPES, f"field 'event' must be an object, got {type(ev).__name__}")
    kind = text(meta, "eventType") or ""
    created = epoch_ms(require(meta, "eventCreationTime"), "metadata.eventCreationTime")

    def header(product: str, vendor_uid: str | None = None, time_ms: int = created) -> Header:
        return Header(VENDOR, product, time_ms, kind, vendor_uid)

    if kind in _DETECTIONS:
        mobile = (get(ev, "MobileNetworkConnections") or [{}])[0] if kind == "MobileDetectionSummaryEvent" else {}
        prevented = text(ev, "NetworkDetectionType") == "prevented"
        tactics = [t for t in (text(ev, "Tactic") or text(ev, "Tactics"), text(ev, "Technique") or text(ev, "Techniques")) if t]
        flags, description = get(ev, "PatternDispositionFlags"), text(ev, "PatternDispositionDescription")
        return build(
            ctx,
            header(text(ev, "SourceProducts") or "Falcon", text(ev, "CompositeId") or text(ev, "DetectId")),
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=severity(get(ev, "Severity"), text(ev, "SeverityName")),
            disposition_id=2 if prevented else disposition(flags, description),
            message=text(ev, "DetectDescription") or text(ev, "Description"),
            user=user(text(ev, "UserName"), text(ev, "MachineDomain") or text(ev, "LogonDomain")),
            device=clean(
                {
                    "hostname": text(ev, "ComputerName") or text(ev, "Hostname"),
                    "ip": text(ev, "LocalIP"),
                    "uid": text(ev, "SensorId") or text(ev, "AgentId"),
                }
            ),
            file=clean(
                {
                    "name": text(ev, "FileName"),
                    "path": text(ev, "FilePath"),
                    "hashes": hashes(text(ev, "MD5String"), text(ev, "SHA1String"), text(ev, "SHA256String")),
                }
            ),
            process=clean({"name": text(ev, "FileName"), "cmd_line": text(ev, "CommandLine")}),
            url=clean(
                {
                    "url_string": text(mobile, "Url") if isinstance(mobile, dict) else None,
                    "hostname": text(ev, "IOCValue") if text(ev, "IOCType") == "domain" else None,
                }
            ),
            app_name=text(ev, "ApplicationName"),
            finding_info=clean(
                {
                    "title": text(ev, "DetectName") or text(ev, "Name"),
                    "uid": text(ev, "DetectId") or text(ev, "CompositeId"),
                    "types": split_list(tactics),
                }
            ),
        )
    if kind == "IncidentSummaryEvent":
        score = get(ev, "FineScore")  # 0-10
        scored = isinstance(score, (int, float)) and not isinstance(score, bool)
        return build(
            ctx,
            header("Falcon", text(ev, "IncidentID")),
            class_uid=2005,
            activity_id=1,
            activity_name="Create",
            severity_id=severity_from_score(score * 10) if scored else 0,
            device=clean({"uid": text(ev, "HostID")}),
            finding_info=clean({"title": "Falcon incident", "uid": text(ev, "IncidentID")}),
        )
    if kind == "IdentityProtectionEvent":
        return build(
            ctx,
            header("Falcon Identity Protection", text(ev, "IdentityProtectionIncidentId")),
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=severity(get(ev, "Severity"), text(ev, "SeverityName")),
            disposition_id=15,
            message=text(ev, "IncidentDescription"),
            user=user(text(ev, "UserName")),
            device=clean({"hostname": text(ev, "EndpointName"), "ip": text(ev, "EndpointIp")}),
            finding_info=clean(
                {
                    "title": text(ev, "IncidentType"),
                    "uid": text(ev, "IdentityProtectionIncidentId"),
                    "types": split_list(text(ev, "Category")),
                }
            ),
        )
    if kind == "AutomatedLeadSummaryEvent":
        indicators = [i for i in get(ev, "ThreatgraphIndicators") or [] if isinstance(i, dict)]
        first = indicators[0] if indicators else {}
        found = {tactic for m in get(ev, "MitreAttack") or [] if isinstance(m, dict) and (tactic := text(m, "Tactic"))}
        return build(
            ctx,
            header("Falcon", text(ev, "CompositeId")),
            class_uid=2004,
            activity_id=1,
            activity_name="Create",
            severity_id=severity(get(ev, "Score"), None),
            disposition_id=15,
            message=text(first, "Description"),
            device=clean({"hostname": text(first, "Hostname"), "uid": text(first, "HostId")}),
            finding_info=clean({"title": text(ev, "Name"), "uid": text(ev, "LeadId"), "types": split_list(sorted(found))}),
        )
    if kind == "AuthActivityAuditEvent":
        operation = text(ev, "OperationName") or ""
        if operation in ("streamStarted", "streamStopped"):
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, f"Streaming API control record ({operation})")
        return build(
            ctx,
            header(text(ev, "ServiceName") or "Falcon", time_ms=epoch_ms(get(ev, "UTCTimestamp") or created, "event.UTCTimestamp")),
            class_uid=3002,
            activity_id=1,
            activity_name=operation or "Logon",
            severity_id=1,
            status_id=_success(ev),
            user=user(text(ev, "UserId"), principal=text(ev, "UserId")),
            src_endpoint=clean({"ip": text(ev, "UserIp")}),
        )
    if kind in ("UserActivityAuditEvent", "APIActivityAuditEvent"):
        user_id = text(ev, "UserId")
        if not user_id:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, f"{kind} by an API client, not a person")
        operation = text(ev, "OperationName") or ""
        return build(
            ctx,
            header(text(ev, "ServiceName") or "Falcon", time_ms=epoch_ms(get(ev, "UTCTimestamp") or created, "event.UTCTimestamp")),
            class_uid=6003,
            activity_id=api_activity(operation),
            activity_name=operation or None,
            severity_id=1,
            status_id=_success(ev) if "Success" in ev else None,
            user=user(user_id, principal=user_id),
            src_endpoint=clean({"ip": text(ev, "UserIp")}),
        )
    if kind == "FirewallMatchEvent":
        inbound = text(ev, "ConnectionDirection") == "1"
        local = {"ip": text(ev, "LocalAddress"), "port": port(ev, "LocalPort")}
        remote = {"ip": text(ev, "RemoteAddress"), "port": port(ev, "RemotePort")}
        blocked = text(ev, "RuleAction") == "2"
        return build(
            ctx,
            header("Falcon Firewall Management", time_ms=parse_time(get(ev, "Timestamp") or created, "event.Timestamp")),
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
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"CrowdStrike streaming event {kind or '(none)'} carries no coaching signal")
