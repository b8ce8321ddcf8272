"""The example events in examples/events: what coachflow makes of each, checked against what the files say.

Every example was written for this repository in its vendor's documented format (examples/events/INDEX.md
names the documentation). EXPECTED below is the source of truth: for each file, its outcomes in order and,
for normalized events, facts read off the file itself (the coached person, host, URL, what the product did,
how severe the vendor said it was) and the starter-pack rules the event must match. String facts are also
looked up in the raw file, so a fact cannot silently drift away from the example it describes.
"""

from __future__ import annotations

import functools
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cli.packs import load_pack, resolve_rule
from handlers.events import NormalizedEvent
from handlers.ingest import normalize_payload
from handlers.rules.matcher import compile_rules

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "events"
STARTER = ROOT / "rules" / "packs" / "starter.yaml"
VENDORS = ("crowdstrike", "zscaler", "netskope", "okta", "microsoft_defender", "proofpoint_tap", "mimecast", "cisco_umbrella", "paloalto")
RECEIVED = 1_773_662_400_000  # 2026-03-16T12:00:00Z: when the test "received" the payloads
YEAR_2026 = (1_767_225_600_000, 1_798_761_600_000)  # [2026-01-01, 2027-01-01) in epoch ms


class Derived(str):
    """A fact the normalizer composes from several raw fields, so it is not looked up in the file as one string."""


@dataclass(frozen=True)
class Event:
    """A normalized outcome: its OCSF class, facts from the file, and the starter-pack rules it must match (exactly)."""

    class_uid: int
    facts: dict[str, Any] = field(default_factory=dict)
    rules: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Ignored:
    reason: str  # prefix of the ignored reason


def N(class_uid: int, facts: dict[str, Any] | None = None, *rules: str) -> Event:
    return Event(class_uid, facts or {}, frozenset(rules))


# File -> its outcomes, in order. Facts: dotted path -> value written in the example.
EXPECTED: dict[str, list[Event | Ignored]] = {
    # --- CrowdStrike -------------------------------------------------------------------------------
    "crowdstrike/streaming_detection_summary_intel_domain.json": [
        N(2004, {"user.name": "alex.rivera", "user.domain": "EXAMPLE", "device.hostname": "WS-AR-014", "url.hostname": "invoice-portal.example.net",
                 "severity_id": 4, "disposition_id": 15, "finding_info.types": ["Falcon Intel", "Intelligence Indicator - Domain"],
                 "time_dt": "2026-03-10T09:14:05.000Z"}, "crowdstrike-risky-domain"),
    ],
    "crowdstrike/streaming_epp_detection_malware_quarantined.json": [
        N(2004, {"user.name": "jordan.lee", "device.hostname": "WS-JL-031", "file.name": "Invoice_2026-0311.exe", "severity_id": 4,
                 "disposition_id": 3, "finding_info.types": ["Malware", "Malicious File"]}, "crowdstrike-malicious-file"),
    ],
    # medium severity: below the starter pack's min_severity 4 (globex lowers it to 3)
    "crowdstrike/streaming_epp_detection_ml_medium_severity.json": [
        N(2004, {"user.name": "sam.patel", "device.hostname": "LAPTOP-SP07", "file.name": "pdf-merge-free-setup.exe", "severity_id": 3,
                 "disposition_id": 15, "finding_info.types": ["Machine Learning", "Sensor-based ML"]}),
    ],
    "crowdstrike/streaming_mobile_detection_intel_domain.json": [
        N(2004, {"user.email_addr": "morgan.chen@example.com", "device.hostname": "iPhone-MC", "app_name": "com.apple.mobilesafari",
                 "url.url_string": "https://parcel-redelivery.example.net/track?id=4471", "severity_id": 4, "disposition_id": 2},
          "crowdstrike-risky-domain"),
    ],
    "crowdstrike/streaming_xdr_detection_summary.json": [
        N(2004, {"finding_info.title": "Repeated failed VPN sign-ins followed by a success", "finding_info.types": ["Credential Access", "Brute Force"],
                 "severity_id": 3}),
    ],
    "crowdstrike/streaming_incident_summary.json": [
        N(2005, {"device.uid": "9a7e1c3b5d2f4a6e8c0b1d3f5a7c9e2b", "severity_id": 4}),  # FineScore 7.2 of 10
    ],
    "crowdstrike/streaming_identity_protection_event.json": [
        N(2004, {"user.name": "taylor.brooks", "user.domain": "EXAMPLE.COM", "device.hostname": "WS-FIN-022",
                 "finding_info.title": "Unusual login to an endpoint", "severity_id": 3}),
    ],
    "crowdstrike/streaming_automated_lead_summary.json": [
        N(2004, {"device.hostname": "WS-AR-014", "severity_id": 4, "finding_info.types": ["Execution", "Initial Access"]}),
    ],
    "crowdstrike/streaming_firewall_match_outbound_blocked.json": [
        N(4001, {"device.hostname": "WS-JL-031", "dst_endpoint.ip": "203.0.113.80", "dst_endpoint.port": 3389, "src_endpoint.ip": "10.20.4.31",
                 "disposition_id": 2, "policy.name": "Workstations - Default", "message": "Block outbound RDP to the internet"}),
    ],
    "crowdstrike/streaming_audit_events_stream.log": [
        Ignored("not_behaviour: Streaming API control record (streamStarted)"),
        N(3002, {"user.email_addr": "riley.ortiz@example.com", "status_id": 1, "activity_name": "twoFactorAuthenticate", "src_endpoint.ip": "198.51.100.23"}),
        N(6003, {"user.email_addr": "riley.ortiz@example.com", "activity_id": 3, "activity_name": "detection_update"}),
        Ignored("not_behaviour: APIActivityAuditEvent by an API client"),
        Ignored("unsupported_event_type: CrowdStrike streaming event RemoteResponseSessionStartEvent"),
    ],
    "crowdstrike/alerts_api_get_alerts_response.json": [
        N(2004, {"user.email_addr": "sam.patel@example.com", "device.hostname": "LAPTOP-SP07", "file.name": "statement_viewer.exe",
                 "severity_id": 5, "disposition_id": 2, "finding_info.types": ["Malware", "Malicious File"]}, "crowdstrike-malicious-file"),
        N(2004, {"user.email_addr": "jordan.lee@example.com", "device.hostname": "WS-JL-031", "severity_id": 2, "disposition_id": 15,
                 "finding_info.types": ["Discovery", "Permission Groups Discovery"]}),
    ],
    "crowdstrike/fdr_sensor_events.log": [
        N(1007, {"user.uid": "S-1-5-21-3308281514-1709541202-2216734512-1107", "device.uid": "5d0c9e7a1b2f4c38a9e6d4b3c2a1f0e9",
                 "process.name": "powershell.exe", "process.pid": 7312}),
        Ignored("not_behaviour: process started by the LocalSystem service account"),
        N(4003, {"query.hostname": "cdn.example.net", "device.uid": "5d0c9e7a1b2f4c38a9e6d4b3c2a1f0e9"}),
        N(4001, {"dst_endpoint.ip": "203.0.113.90", "dst_endpoint.port": 443, "src_endpoint.ip": "10.20.4.14"}),
        N(1007, {"activity_id": 99, "file.name": "helper.ps1", "process.name": "powershell.exe"}),
        Ignored("unsupported_event_type: FDR SensorHeartbeat"),
    ],
    "crowdstrike/fdr_zero_trust_assessment.json": [Ignored("not_behaviour: Zero Trust host assessment")],
    "crowdstrike/fdr_managed_assets_network_interface.json": [Ignored("not_behaviour: FDR asset inventory record")],
    # --- Zscaler -----------------------------------------------------------------------------------
    "zscaler/nss_web_online_chat_allowed.json": [
        N(4002, {"user.email_addr": "alex.rivera@example.com", "url.hostname": "chat.example.org", "disposition_id": 1, "activity_id": 6,
                 "url.categories": ["Online Chat", "Internet Communication"], "device.hostname": "WS-AR-014",
                 "time_dt": "2026-03-10T10:02:17.000Z"}, "zscaler-risky-web-category"),
    ],
    "zscaler/nss_web_threat_allowed.json": [
        N(4002, {"user.email_addr": "jordan.lee@example.com", "url.hostname": "free-fonts.example.net", "disposition_id": 1, "severity_id": 4,
                 "malware": [{"name": "Adware.Generic.Bundler", "classification": "Adware"}]}, "zscaler-threat-allowed"),
    ],
    "zscaler/nss_web_cloud_feed_batch.log": [
        N(4002, {"user.email_addr": "sam.patel@example.com", "url.hostname": "lucky-spins.example.net", "url.categories": ["Gambling"],
                 "disposition_id": 2}),  # a risky category, but already blocked: nothing to coach
        N(4002, {"user.email_addr": "sam.patel@example.com", "url.hostname": "news.example.org", "url.categories": ["News and Media"],
                 "disposition_id": 1}),
    ],
    "zscaler/nss_firewall_blocked.json": [
        N(4001, {"user.email_addr": "jordan.lee@example.com", "dst_endpoint.ip": "203.0.113.201", "dst_endpoint.port": 6881, "disposition_id": 2,
                 "app_name": "bittorrent", "policy.name": "Block P2P Applications"}),
    ],
    # reqaction REQ_BLOCK: see test_documented_values_coachflow_misreads
    "zscaler/nss_dns_request_blocked.json": [
        N(4003, {"user.email_addr": "morgan.chen@example.com", "query.hostname": "login-verify.example.net", "query.type": "A",
                 "url.categories": ["Newly Registered Domains"], "policy.name": "Block Newly Registered Domains"}),
    ],
    "zscaler/nss_admin_audit_sign_in.json": [
        N(3002, {"user.email_addr": "riley.ortiz@example.com", "status_id": 1, "src_endpoint.ip": "198.51.100.23"}),
    ],
    "zscaler/nss_casb_onedrive_activity.json": [
        N(6001, {"user.email_addr": "alex.rivera@example.com", "app_name": "ONEDRIVE", "file.name": "Q1-budget-draft.xlsx", "time": RECEIVED}),
    ],
    "zscaler/nss_tunnel_ipsec_samples.json": [Ignored("not_behaviour: tunnel telemetry")],
    "zscaler/zpa_lss_user_activity.log": [
        N(4001, {"user.email_addr": "alex.rivera@example.com", "dst_endpoint.hostname": "erp.corp.example.com", "app_name": "ERP Web",
                 "disposition_id": 1, "activity_id": 1}),
        N(4001, {"user.email_addr": "taylor.brooks@example.com", "dst_endpoint.hostname": "build-01.corp.example.com", "disposition_id": 2,
                 "activity_id": 2, "message": "BRK_MT_SETUP_FAIL_REJECTED_BY_POLICY", "policy.name": "Default Deny"}),
    ],
    # --- Netskope ----------------------------------------------------------------------------------
    "netskope/api_v2_alerts_dlp_response.json": [
        N(2006, {"user.email_addr": "taylor.brooks@example.com", "app_name": "Gmail", "file.name": "customer-export-2026-03.csv",
                 "disposition_id": 2, "severity_id": 4, "policy.name": "DLP - Block payment data to personal webmail"}, "netskope-dlp-violation"),
        N(2006, {"user.email_addr": "taylor.brooks@example.com", "app_name": "Microsoft OneDrive for Business", "file.name": "salary-review-2026.xlsx",
                 "disposition_id": 19, "severity_id": 3}),  # sanctioned storage is exempt
    ],
    "netskope/alert_malsite_blocked.json": [
        N(2004, {"user.email_addr": "morgan.chen@example.com", "url.hostname": "secure-login.example.net", "url.categories": ["Malicious Site"],
                 "disposition_id": 2, "device.hostname": "LAPTOP-MC02"}, "netskope-malicious-site"),
    ],
    "netskope/alert_malware_download_detected.json": [
        N(2004, {"user.email_addr": "jordan.lee@example.com", "file.name": "vendor-portal-setup.exe", "app_name": "Dropbox", "severity_id": 4,
                 "malware": [{"name": "Trojan.Win32.ExampleLoader", "classification": "Trojan"}]}),
    ],
    "netskope/alert_policy_useralert_wetransfer_upload.json": [
        N(6001, {"user.email_addr": "alex.rivera@example.com", "app_name": "WeTransfer", "activity_id": 1, "file.name": "client-contracts-2026.zip",
                 "email.to": ["contracts@partner.example.org"], "disposition_id": 19}, "netskope-unsanctioned-cloud-share"),
    ],
    "netskope/api_v2_events_application_response.json": [
        N(6001, {"user.email_addr": "sam.patel@example.com", "app_name": "Box", "activity_id": 1, "file.name": "architecture-review.pdf"}),
        N(6001, {"user.email_addr": "alex.rivera@example.com", "app_name": "SharePoint", "activity_id": 2, "file.name": "travel-policy-2026.docx"}),
    ],
    "netskope/api_v1_events_connection_response.json": [
        N(4001, {"user.email_addr": "morgan.chen@example.com", "url.hostname": "booking.example.org", "app_name": "Example Travel",
                 "policy.name": "Allow travel sites"}),
    ],
    "netskope/api_v2_events_audit_response.json": [
        N(3002, {"user.email_addr": "riley.ortiz@example.com", "status_id": 2, "src_endpoint.ip": "198.51.100.23"}),
        N(6003, {"user.email_addr": "riley.ortiz@example.com", "activity_name": "Edited Real-time Protection Policy"}),
    ],
    "netskope/alert_security_assessment.json": [Ignored("unsupported_event_type: Netskope securityassessment")],
    # the #Fields header names the path column cs-uri: see test_documented_values_coachflow_misreads
    "netskope/transaction_w3c_with_fields_header.log": [
        Ignored("not_event: W3C directive line"),
        N(4002, {"user.email_addr": "jordan.lee@example.com", "url.hostname": "paste.example.net", "activity_id": 6, "app_name": "Example Paste",
                 "url.categories": ["Collaboration"], "src_endpoint.location.city": "Berlin"}),
        N(4002, {"user.email_addr": "jordan.lee@example.com", "url.hostname": "search.example.com", "activity_id": 3,
                 "url.categories": ["Search Engines"]}),
    ],
    "netskope/transaction_log_streaming_csv.log": [
        N(4002, {"user.email_addr": "sam.patel@example.com", "activity_id": 7, "app_name": "Example Drive",
                 "url.url_string": Derived("https://drive.example.org/upload/v3/files/design-notes.pdf"), "time_dt": "2026-03-12T10:02:11.000Z"}),
        N(4002, {"user.email_addr": "sam.patel@example.com", "url.hostname": "status.example.com", "url.categories": ["Technology"]}),
    ],
    # --- Okta --------------------------------------------------------------------------------------
    "okta/logs_api_repeated_sign_in_failures.json": [
        N(3002, {"user.email_addr": "dana.whitfield@example.org", "status_id": 2, "src_endpoint.ip": "203.0.113.9", "severity_id": 3,
                 "time_dt": stamp}, "okta-repeated-sign-in-failures")
        for stamp in ("2026-03-13T09:01:12.114Z", "2026-03-13T09:02:40.551Z", "2026-03-13T09:03:58.020Z", "2026-03-13T09:05:31.876Z",
                      "2026-03-13T09:06:49.302Z")
    ],
    "okta/user_account_lock.json": [
        N(3001, {"user.email_addr": "alex.rivera@example.com", "activity_id": 9, "status_id": 2, "message": "Max sign in attempts exceeded",
                 "src_endpoint.location.city": "Berlin"}, "okta-account-locked"),
    ],
    "okta/logs_api_push_then_sso.json": [
        N(3002, {"user.email_addr": "sam.patel@example.com", "activity_id": 99, "activity_name": "MFA Challenge", "status_id": 1}),
        N(3002, {"user.email_addr": "sam.patel@example.com", "activity_id": 1, "status_id": 1, "app_name": "Example Expenses"}),
    ],
    "okta/user_mfa_factor_deactivate_by_admin.json": [
        N(3001, {"user.email_addr": "morgan.chen@example.com", "actor.email_addr": "riley.ortiz@example.com", "activity_id": 11}),
    ],
    "okta/security_threat_detected.json": [
        N(2004, {"user.email_addr": "dana.whitfield@example.org", "finding_info.title": "Request from suspicious actor", "severity_id": 3}),
    ],
    "okta/logs_api_admin_and_app_events.json": [
        Ignored("not_behaviour: app.oauth2.as.token.grant.access_token performed by PublicClientApp"),
        Ignored("unsupported_event_type: Okta group.user_membership.add"),
        N(3002, {"user.email_addr": "morgan.chen@example.com", "activity_id": 2, "status_id": 1}),
    ],
    # --- Microsoft Defender ------------------------------------------------------------------------
    "microsoft_defender/eventhub_url_click_events.json": [
        N(4010, {"user.email_addr": "alex.rivera@example.com", "activity_name": "Click Through", "disposition_id": 1, "severity_id": 4,
                 "url.url_string": "https://docs-share.example.net/view/7Qm2?login=alex.rivera", "malware": [{"name": "Phish"}]},
          "defender-safe-links-click-through"),
        N(4010, {"user.email_addr": "sam.patel@example.com", "activity_name": "Click", "disposition_id": 1, "severity_id": 1,
                 "url.url_string": "https://intranet.example.com/news/2026/q1-town-hall"}),
    ],
    "microsoft_defender/eventhub_email_events_phish_junked.json": [
        N(4009, {"user.email_addr": "alex.rivera@example.com", "actor.email_addr": "payroll@hr-notices.example.net", "severity_id": 4,
                 "email.subject": "Action required: confirm your March payroll details", "finding_info.types": ["Phish"]}),
    ],
    "microsoft_defender/eventhub_alert_evidence_smartscreen_override.json": [
        N(2004, {"user.email_addr": "morgan.chen@example.com", "finding_info.title": "User overrode a SmartScreen warning on a reported phishing site",
                 "severity_id": 3, "finding_info.types": ["InitialAccess"]}, "defender-smartscreen-bypass"),
    ],
    "microsoft_defender/eventhub_alert_info_malware_prevented.json": [
        N(2004, {"finding_info.title": "'ExampleLoader' malware was prevented", "severity_id": 2, "finding_info.types": ["Malware"]}),
    ],
    "microsoft_defender/graph_security_alerts_v2_response.json": [
        N(2004, {"user.email_addr": "dana.whitfield@example.org", "url.url_string": "https://board-portal.example.net/sign-in?ref=q1-minutes",
                 "severity_id": 4, "finding_info.title": "Email messages containing malicious URL removed after delivery"}),
        N(2004, {"user.email_addr": "alex.rivera@example.com", "device.hostname": "ws-ar-014.corp.example.com", "severity_id": 3,
                 "finding_info.types": ["Execution"]}),
    ],
    "microsoft_defender/eventhub_device_process_events.json": [
        N(1007, {"user.email_addr": "alex.rivera@example.com", "device.hostname": "ws-ar-014.corp.example.com", "process.name": "powershell.exe",
                 "process.pid": 7312}),
    ],
    # raw SmartScreen telemetry is Process Activity; only alerts about it are coached
    "microsoft_defender/eventhub_device_events_smartscreen_user_override.json": [
        N(1007, {"user.email_addr": "morgan.chen@example.com", "device.hostname": "laptop-mc02.corp.example.com",
                 "activity_name": "SmartScreenUserOverride"}),
    ],
    "microsoft_defender/eventhub_identity_logon_failed.json": [
        N(3002, {"user.email_addr": "taylor.brooks@example.com", "status_id": 2, "dst_endpoint.port": 88, "app_name": "Active Directory",
                 "message": "WrongPassword"}),
    ],
    "microsoft_defender/eventhub_registry_and_inventory_records.json": [
        Ignored("not_behaviour: registry change made by a system account"),
        Ignored("unsupported_event_type: advanced hunting table DeviceInfo"),
    ],
    # --- Proofpoint TAP ----------------------------------------------------------------------------
    "proofpoint_tap/siem_all_response.json": [
        # messagesDelivered: one event per recipient
        N(4009, {"user.email_addr": "dana.whitfield@example.org", "actor.email_addr": "secretary@board-portal.example.net", "disposition_id": 1,
                 "severity_id": 4, "email.subject": "Q1 board minutes - please review before Friday"}, "proofpoint-threat-delivered"),
        N(4009, {"user.email_addr": "alex.rivera@example.com", "email.to": ["alex.rivera@example.com"], "disposition_id": 1, "severity_id": 4},
          "proofpoint-threat-delivered"),
        # messagesBlocked: the pack's rule has no disposition condition, so it matches a blocked message too
        N(4009, {"user.email_addr": "sam.patel@example.com", "file.name": "Remittance_advice_0313.xlsm", "disposition_id": 2, "severity_id": 4},
          "proofpoint-threat-delivered"),
        N(4010, {"user.email_addr": "alex.rivera@example.com", "url.url_string": "https://board-portal.example.net/sign-in?ref=q1-minutes",
                 "disposition_id": 1, "src_endpoint.ip": "198.51.100.44"}, "proofpoint-clicked-malicious-link"),
        N(4010, {"user.email_addr": "morgan.chen@example.com", "disposition_id": 2}),
    ],
    "proofpoint_tap/siem_clicks_permitted_response.json": [
        N(4010, {"user.email_addr": "jordan.lee@example.com", "url.url_string": "http://free-fonts.example.net/download/pack.zip", "disposition_id": 1,
                 "severity_id": 4}, "proofpoint-clicked-malicious-link"),
    ],
    "proofpoint_tap/siem_messages_delivered_response.json": [
        N(4009, {"user.email_addr": "taylor.brooks@example.com", "email.subject": "Last chance: 70% off office chairs", "severity_id": 3,
                 "disposition_id": 1}),
    ],
    # --- Mimecast ----------------------------------------------------------------------------------
    "mimecast/siem_batch_receipt_process_delivery.log": [
        N(4009, {"user.email_addr": "alex.rivera@example.com", "actor.email_addr": "newsletter@updates.example.org", "disposition_id": 1}),
        N(4009, {"user.email_addr": "sam.patel@example.com", "disposition_id": 25, "message": "IP Found in RBL"}),
        N(4009, {"activity_id": 3, "email.subject": "Your March product update"}),
        Ignored("unsupported_event_type: Mimecast delivery"),
    ],
    "mimecast/url_protect_click_blocked.json": [
        N(4010, {"user.email_addr": "jordan.lee@example.com", "disposition_id": 2, "severity_id": 4, "url.categories": ["Phishing & Fraud"],
                 "url.url_string": "https://shared-docs.example.net/o365/login.php?u=jordan.lee"}),
    ],
    "mimecast/av_attachment_virus_detected.json": [
        N(4009, {"user.email_addr": "sam.patel@example.com", "file.name": "Remittance_advice_0313.xlsm", "malware": [{"name": "Example.Downloader.XLM"}],
                 "disposition_id": 2}),
    ],
    "mimecast/impersonation_protect_held.json": [
        N(4009, {"user.email_addr": "taylor.brooks@example.com", "disposition_id": 3, "policy.name": "Default Impersonation Definition"}),
    ],
    # --- Cisco Umbrella ----------------------------------------------------------------------------
    "cisco_umbrella/dns_logs_s3_export.log": [
        N(4003, {"user.email_addr": "morgan.chen@example.com", "user.name": "Morgan Chen", "query.hostname": "login-verify.example.net",
                 "disposition_id": 2, "severity_id": 3, "url.categories": ["Phishing", "Newly Seen Domains"]}),
        N(4003, {"user.email_addr": "morgan.chen@example.com", "query.hostname": "intranet.example.com", "query.type": "AAAA", "disposition_id": 1}),
        N(4003, {"user.name": "LAPTOP-SP07", "query.hostname": "telemetry.example.org", "message": "NXDOMAIN"}),
    ],
    "cisco_umbrella/proxy_logs_s3_export.log": [
        N(4002, {"user.email_addr": "jordan.lee@example.com", "url.url_string": "http://free-fonts.example.net/download/pack.zip", "disposition_id": 2,
                 "malware": [{"name": "Win.Downloader.Example-10021"}], "activity_id": 3}),
        N(4002, {"user.email_addr": "jordan.lee@example.com", "url.url_string": "https://mail.example.org/api/v1/messages/send", "disposition_id": 1,
                 "activity_id": 6, "url.categories": ["Webmail"]}),
    ],
    # --- Palo Alto Networks ------------------------------------------------------------------------
    "paloalto/syslog_traffic_csv.log": [
        N(4001, {"user.name": "alex.rivera", "user.domain": "example", "app_name": "ssl", "dst_endpoint.port": 443, "activity_id": 2,
                 "disposition_id": 1, "time_dt": "2026-03-12T10:20:31.000Z"}),
        N(4001, {"user.name": "jordan.lee", "app_name": "bittorrent", "activity_id": 5, "disposition_id": 2, "policy.name": "Block-P2P"}),
    ],
    "paloalto/syslog_threat_csv.log": [
        N(2004, {"user.name": "morgan.chen", "url.url_string": "secure-login.example.net/m365/verify", "disposition_id": 2,
                 "finding_info.types": ["phishing", "url"]}),
        N(2004, {"user.name": "sam.patel", "severity_id": 5, "disposition_id": 2,
                 "finding_info.title": "Example.Gen Command and Control Traffic(86001)"}),
    ],
    "paloalto/syslog_globalprotect_csv.log": [
        N(3002, {"user.name": "taylor.brooks", "device.hostname": "WS-FIN-022", "src_endpoint.ip": "198.51.100.45", "status_id": 1,
                 "activity_name": "gateway-auth"}),
        Ignored("not_behaviour: GlobalProtect gateway-config-release"),
    ],
    "paloalto/cortex_cef_forwarding.log": [
        N(2004, {"user.name": "sam.patel", "file.name": "Remittance_advice_0313.xlsm", "severity_id": 4, "disposition_id": 2,
                 "finding_info.title": "Example.Downloader.XLM(510001)"}),
        N(4001, {"user.name": "morgan.chen", "dst_endpoint.ip": "203.0.113.190", "disposition_id": 1}),
        Ignored("unsupported_event_type: PAN-OS SYSTEM log"),
    ],
    "paloalto/cortex_https_json_forwarding.json": [
        N(2004, {"finding_info.title": "Example Web App Path Traversal Vulnerability(91234)", "severity_id": 4, "disposition_id": 2,
                 "dst_endpoint.ip": "10.10.5.40"}),
        N(4001, {"user.name": "taylor.brooks", "app_name": "gmail-base", "disposition_id": 1}),
        Ignored("unsupported_event_type: PAN-OS GLOBALPROTECT log"),
    ],
}  # fmt: skip


def _files() -> list[str]:
    return sorted(f"{p.parent.name}/{p.name}" for p in EXAMPLES.glob("*/*") if p.is_file())


def _outcomes(name: str, source: str | None = None, tenant: str = "acme") -> list[Any]:
    return normalize_payload((EXAMPLES / name).read_text(encoding="utf-8"), source or name.split("/")[0], tenant, RECEIVED)


def _field(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [] if isinstance(value, Derived) else [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


# Facts in coachflow's own vocabulary (or computed from a timestamp) rather than copied from the file.
_VOCABULARY = {"activity_name", "time_dt"}


@functools.cache
def _starter() -> tuple[list[str], Any]:
    """The starter pack's rule ids and its compiled matcher (pack defaults, as acme uses them)."""
    rules = [resolve_rule(raw, rule_id) for rule_id, raw in load_pack(STARTER).items()]
    return [r.rule_id for r in rules], compile_rules(rules)


# 1. every file: its outcomes and the facts written in it -------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(name: str):
    text_of_file = (EXAMPLES / name).read_text(encoding="utf-8")
    raw = f"{text_of_file}\n{urllib.parse.unquote(text_of_file)}".lower()  # Zscaler URL-encodes some values
    results = _outcomes(name)
    expected = EXPECTED[name]
    got = [(o.kind, o.event["class_uid"] if o.kind == "normalized" else f"{o.reason}: {o.detail}") for o in results]
    want = [("normalized", e.class_uid) if isinstance(e, Event) else ("ignored", e.reason) for e in expected]
    assert len(got) == len(want), [o.summary() for o in results]
    for (kind, what), (want_kind, want_what) in zip(got, want):
        assert kind == want_kind, [o.summary() for o in results]
        assert what == want_what if kind == "normalized" else str(what).startswith(str(want_what)), (what, want_what)
    for outcome, spec in zip(results, expected):
        if not isinstance(spec, Event):
            continue
        for path, value in spec.facts.items():
            assert _field(outcome.event, path) == value, f"{name}: {path}"
            if path not in _VOCABULARY:
                for text in _strings(value):
                    bare = re.sub(r"^https?://", "", text).lower()
                    assert bare in raw, f"{name}: fact {path}={text!r} is not written in the example"


# 2. the table covers the directory, every vendor gives events, nothing is rejected ------------------


def test_every_example_file_is_expected_and_every_expectation_has_a_file():
    assert _files() == sorted(EXPECTED)
    assert {name.split("/")[0] for name in _files()} == set(VENDORS)


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendor_gives_at_least_three_events_and_no_rejection(vendor: str):
    outcomes = [o for name in _files() if name.startswith(f"{vendor}/") for o in _outcomes(name)]
    assert not [o.summary() for o in outcomes if o.kind == "rejected"]
    assert sum(o.kind == "normalized" for o in outcomes) >= 3


# 3. auto-detection agrees with the named source -----------------------------------------------------


@pytest.mark.parametrize("name", _files())
def test_auto_detection_gives_the_same_outcomes(name: str):
    named = [o.summary() for o in _outcomes(name)]
    auto = [o.summary() for o in _outcomes(name, source="auto")]
    assert auto == named


# 4. every normalized event is a valid event of its tenant, in 2026 ---------------------------------


@pytest.mark.parametrize("tenant", ["acme", "globex"])
def test_normalized_examples_are_valid_events_of_the_tenant(tenant: str):
    uids: set[str] = set()
    for name in _files():
        for outcome in _outcomes(name, tenant=tenant):
            if outcome.kind != "normalized":
                continue
            event = outcome.event
            NormalizedEvent.model_validate(event)
            assert event["metadata"]["tenant_uid"] == tenant, name
            assert YEAR_2026[0] <= event["time"] < YEAR_2026[1] and event["time_dt"].startswith("2026-"), name
            assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"], name
            assert event["uid"] not in uids, f"{name}: two example events share a uid"
            uids.add(event["uid"])
    other = "globex" if tenant == "acme" else "acme"
    assert not uids & {o.uid for name in _files() for o in _outcomes(name, tenant=other) if o.kind == "normalized"}


# 5. the starter pack: every rule fires on some example, some examples fire nothing ------------------


def test_every_starter_rule_matches_an_example_and_some_examples_match_none():
    rule_ids, matcher = _starter()
    fired: set[str] = set()
    quiet = 0
    for name in _files():
        for outcome in _outcomes(name):
            if outcome.kind == "normalized":
                hits = matcher.match(outcome.event)
                fired.update(hits)
                quiet += not hits
    assert fired == set(rule_ids)
    assert quiet >= 1


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_example_matches_exactly_the_expected_starter_rules(name: str):
    _, matcher = _starter()
    events = [o.event for o in _outcomes(name) if o.kind == "normalized"]
    expected = [e.rules for e in EXPECTED[name] if isinstance(e, Event)]
    assert [set(matcher.match(event)) for event in events] == [set(r) for r in expected]


# 6. INDEX.md lists exactly the files that exist -----------------------------------------------------

_HEADING = re.compile(r"^##\s.*\(`([a-z_]+)`\)\s*$")
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def test_index_lists_exactly_the_example_files():
    listed: list[str] = []
    vendor = None
    for line in (EXAMPLES / "INDEX.md").read_text(encoding="utf-8").splitlines():
        if heading := _HEADING.match(line):
            vendor = heading.group(1)
        elif (row := _ROW.match(line)) and vendor:
            listed.append(f"{vendor}/{row.group(1)}")
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert sorted(listed) == _files()


# Known differences with the vendors' documentation: each xfail says what the documentation says. When the
# normalizer is fixed, the test passes, strict xfail fails, and the note (and EXPECTED) should be updated.


def test_zscaler_dns_req_block_is_blocked():
    # Zscaler documents DNS reqaction values REQ_ALLOW/REQ_BLOCK
    (outcome,) = _outcomes("zscaler/nss_dns_request_blocked.json")
    assert outcome.event["disposition_id"] == 2


def test_netskope_w3c_header_keeps_the_url_path():
    # Netskope Format 1 headers name the path column cs-uri (the positional format: cs-uri-path)
    outcomes = [o for o in _outcomes("netskope/transaction_w3c_with_fields_header.log") if o.kind == "normalized"]
    assert outcomes[0].event["url"]["url_string"] == "https://paste.example.net/api/v1/pastes"


def test_netskope_w3c_files_starting_with_other_directives_are_detected():
    body = (EXAMPLES / "netskope" / "transaction_w3c_with_fields_header.log").read_text(encoding="utf-8")
    payload = "#Software: Netskope\n#Version: 1.0\n#Date: 2026-03-10 09:00:00\n" + body
    outcomes = normalize_payload(payload, "auto", "acme")
    assert [o.kind for o in outcomes].count("normalized") == len(body.strip().splitlines()) - 1
    assert {o.source for o in outcomes} == {"netskope"}


def test_crowdstrike_alerts_api_disposition_flags_in_snake_case():
    # The Alerts API spells pattern_disposition_details keys in snake_case (the Streaming API in CamelCase).
    alert = {"composite_id": "c:ind:a:9", "cid": "c", "agent_id": "a", "timestamp": "2026-03-10T08:00:00Z", "severity": 70,
             "name": "Malware", "pattern_disposition_description": "Prevention, file quarantined.",
             "pattern_disposition_details": {"quarantine_file": True, "kill_process": True, "policy_disabled": False}}  # fmt: skip
    (outcome,) = normalize_payload(json.dumps({"resources": [alert]}), "crowdstrike", "acme")
    assert outcome.event["disposition_id"] == 3  # Quarantined, not just "Blocked" from the description
    alert["pattern_disposition_details"]["policy_disabled"] = True
    (outcome,) = normalize_payload(json.dumps({"resources": [alert]}), "crowdstrike", "acme")
    assert outcome.event["disposition_id"] == 2  # the policy did not act: only the description says "quarantined"
