"""CrowdStrike Falcon Data Replicator (FDR) records: flat telemetry named by ``event_simpleName``
(process launches, DNS requests, network connections, script content scans)."""

from __future__ import annotations

from typing import Any

from handlers.events import Header, build
from handlers.ocsf import OTHER
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event
from handlers.vendors.crowdstrike.falcon import SERVICE_SIDS, VENDOR, user
from handlers.vendors.fields import basename, clean, epoch_ms, hashes, integer, port, require, text


def detect(record: dict[str, Any]) -> bool:
    return "event_simpleName" in record or ("aid" in record and "cid" in record)


def normalize(record: dict[str, Any], ctx: Context) -> Event:
    name = text(record, "event_simpleName")
    if not name:
        if record.get("event_type") == "ZeroTrustHostAssessment" or "assessments" in record:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, "Zero Trust host assessment (device posture, not an action)")
        if "InterfaceAlias" in record or "MAC" in record:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, "FDR asset inventory record (network interface)")
        raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, "FDR record without event_simpleName")
    when = record.get("timestamp") or record.get("ContextTimeStamp") or record.get("_time")
    header = Header(VENDOR, "Falcon Data Replicator", epoch_ms(when, "timestamp"), name, text(record, "id"))
    device = clean(
        {
            "uid": text(record, "aid"),
            "ip": text(record, "LocalAddressIP4"),
            "hostname": text(record, "ComputerName"),
            "os_name": text(record, "event_platform"),
        }
    )
    person = user(text(record, "UserName"), principal=text(record, "UserPrincipal"))
    sid = text(record, "UserSid")
    if name in ("ProcessRollup2", "SyntheticProcessRollup2"):
        if sid in SERVICE_SIDS and not person:
            raise Ignored(IgnoreReason.NOT_BEHAVIOUR, f"process started by the {SERVICE_SIDS[sid]} service account")
        return build(
            ctx,
            header,
            class_uid=1007,
            activity_id=1,
            activity_name="Launch",
            severity_id=1,
            device=device,
            user=person or clean({"uid": sid}),
            process=clean(
                {
                    "name": basename(text(record, "ImageFileName")),
                    "cmd_line": text(record, "CommandLine"),
                    "pid": integer(record, "RawProcessId"),
                }
            ),
            file=clean(
                {
                    "path": text(record, "ImageFileName"),
                    "hashes": hashes(text(record, "MD5HashData"), text(record, "SHA1HashData"), text(record, "SHA256HashData")),
                }
            ),
        )
    if name == "DnsRequest":
        return build(
            ctx,
            header,
            class_uid=4003,
            activity_id=1,
            activity_name="Query",
            severity_id=1,
            device=device,
            user=person,
            query=clean({"hostname": require(record, "DomainName"), "type": text(record, "RequestType")}),
        )
    if name in ("NetworkConnectIP4", "NetworkConnectIP6"):
        version = name[-1]
        return build(
            ctx,
            header,
            class_uid=4001,
            activity_id=1,
            activity_name="Open",
            severity_id=1,
            device=device,
            user=person,
            src_endpoint=clean({"ip": text(record, f"LocalAddressIP{version}"), "port": port(record, "LocalPort")}),
            dst_endpoint=clean({"ip": text(record, f"RemoteAddressIP{version}"), "port": port(record, "RemotePort")}),
        )
    if name.startswith("ScriptControl"):
        return build(
            ctx,
            header,
            class_uid=1007,
            activity_id=OTHER,
            activity_name="Script Content Scanned",
            severity_id=1,
            device=device,
            user=person,
            process=clean({"name": basename(text(record, "ImageFileName")), "cmd_line": text(record, "CommandLine")}),
            file=clean(
                {
                    "name": basename(text(record, "ScriptContentName")),
                    "path": text(record, "ScriptContentName"),
                    "hashes": hashes(sha256=text(record, "ContentSHA256HashData")),
                }
            ),
        )
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"FDR {name} carries no coaching signal")
