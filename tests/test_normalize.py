"""Normalization of every real vendor sample, the shapes vendors deliver, and every rejection reason.

The expected values below were read off the raw samples in ../shared/samples (not copied from the
normalizer's output): each row pins the fields coaching and rules depend on.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.stack import EXAMPLES, ROOT
from handlers.events import MAX_STRING, NormalizedEvent
from handlers.ingest import normalize_payload
from handlers.outcomes import MAX_RECORD_BYTES, IgnoreReason, RejectReason

RECEIVED = 1_795_000_000_000  # when the test "received" the records (for records without a time)

# sample -> (outcome, reason prefix) or {dotted field: expected value} for each normalized event
EXPECTED: dict[str, Any] = {
    # CrowdStrike Falcon
    "crowdstrike/sekoia_api_activity_audit.json": ("ignored", "not_behaviour: APIActivityAuditEvent by an API client"),
    "crowdstrike/sekoia_auth_activity_audit.json": {"class_uid": 3002, "status_id": 1, "user.name": "user1", "src_endpoint.ip": "192.0.2.1",
                                                    "time_dt": "2022-07-12T21:59:06.099Z"},
    "crowdstrike/sekoia_auth_activity_stream_started.json": ("ignored", "not_behaviour: Streaming API control record (streamStarted)"),
    "crowdstrike/sekoia_automated_lead_summary.json": {"class_uid": 2004, "severity_id": 3, "device.hostname": "TESTHOST-PC",
                                                       "finding_info.types": ["Defense Evasion", "Execution"]},
    "crowdstrike/sekoia_detection_summary_event.json": {"class_uid": 2004, "severity_id": 4, "disposition_id": 15, "user.name": "JOHNDOE",
                                                        "user.domain": "AD", "url.hostname": "example.com", "file.name": "file.exe",
                                                        "finding_info.title": "Intel Detection", "time_dt": "2025-04-02T08:53:57.000Z"},
    "crowdstrike/sekoia_epp_detection_summary.json": {"class_uid": 2004, "severity_id": 4, "disposition_id": 15, "user.name": "user1",
                                                      "file.path": "/usr/bin/git", "finding_info.types": ["Malware", "Malicious File"]},
    "crowdstrike/sekoia_epp_detection_summary_ods_minimal.json": {"class_uid": 2004, "severity_id": 4, "file.name": "testfile.vmx",
                                                                  "finding_info.title": "OnDemandScanfiletest"},
    "crowdstrike/sekoia_fdr_dnsrequest.json": {"class_uid": 4003, "activity_id": 1, "query.hostname": "EXAMPLE", "query.type": "28",
                                               "device.uid": "111111111111111", "time_dt": "2023-06-23T08:42:11.178Z"},
    "crowdstrike/sekoia_fdr_networkconnectip4.json": {"class_uid": 4001, "src_endpoint.ip": "1.2.3.4", "dst_endpoint.ip": "5.6.7.8",
                                                      "dst_endpoint.port": 443},
    "crowdstrike/sekoia_fdr_networkinterface_unicode.json": ("ignored", "not_behaviour: FDR asset inventory record"),
    "crowdstrike/sekoia_fdr_processrollup2.json": ("ignored", "not_behaviour: process started by the LocalService service account"),
    "crowdstrike/sekoia_fdr_scriptcontent.json": {"class_uid": 1007, "activity_id": 99, "file.name": "MonitorKnowledgeDiscovery.vbs"},
    "crowdstrike/sekoia_fdr_zta_scores.json": ("ignored", "not_behaviour: Zero Trust host assessment"),
    "crowdstrike/sekoia_firewall_match_inbound.json": {"class_uid": 4001, "activity_id": 5, "disposition_id": 2, "src_endpoint.ip": "1.2.3.4",
                                                       "dst_endpoint.port": 67, "policy.name": "Smth - Firewall ON",
                                                       "time_dt": "2025-11-28T14:37:01.000Z"},
    "crowdstrike/sekoia_identity_protection_event.json": {"class_uid": 2004, "user.name": "JOHNDOE", "user.domain": "EXAMPLE.ORG",
                                                          "finding_info.title": "Use of stale user account"},
    "crowdstrike/sekoia_incident_summary.json": {"class_uid": 2005, "severity_id": 1, "device.uid": "HOSTID"},
    "crowdstrike/sekoia_mobile_detection_summary.json": {"class_uid": 2004, "disposition_id": 2, "url.url_string": "https://crowdstrike.test.com/integration",
                                                         "app_name": ".com.google.chrome.ios", "finding_info.types": ["Falcon Intel", "Intelligence Indicator - Domain"]},
    "crowdstrike/sekoia_user_activity_audit.json": {"class_uid": 6003, "activity_id": 3, "activity_name": "detection_update", "user.name": "user1"},
    "crowdstrike/sekoia_xdr_detection_summary.json": {"class_uid": 2004, "finding_info.title": "azureuser on linux-vm", "time_dt": "2024-06-25T10:07:36.000Z"},
    # Zscaler
    "zscaler/sekoia_zia_audit_signin.json": {"class_uid": 3002, "activity_id": 1, "status_id": 1, "user.email_addr": "j.doe@company.com",
                                             "src_endpoint.ip": "1.2.3.4", "time_dt": "2025-03-31T11:13:00.000Z"},
    "zscaler/sekoia_zia_casb_minimal.json": {"class_uid": 6001, "user.email_addr": "john.doe@example.org", "app_name": "ONEDRIVE",
                                             "file.name": "sanity2022-09-04 00-06.pdf", "time": RECEIVED},
    "zscaler/sekoia_zia_dns.json": {"class_uid": 4003, "query.hostname": "test.example.org", "query.type": "AAAA", "disposition_id": 1,
                                    "url.categories": ["Corporate Marketing"], "policy.name": "DNS_1", "dst_endpoint.port": 53},
    "zscaler/sekoia_zia_firewall.json": {"class_uid": 4001, "disposition_id": 1, "dst_endpoint.ip": "1.2.3.4", "dst_endpoint.port": 443,
                                         "policy.name": "Recommended Firewall Rule", "malware": [{"name": "Threat name 1", "classification": "Threat category 2"}]},
    "zscaler/sekoia_zia_tunnel_ipsec.json": ("ignored", "not_behaviour: tunnel telemetry"),
    "zscaler/sekoia_zia_web_https.json": {"class_uid": 4002, "activity_id": 3, "disposition_id": 1, "user.email_addr": "john.doe@mail.com",
                                          "url.url_string": "https://api.chat.org/bot/sendmessage", "url.categories": ["Online Chat", "Internet Communication"],
                                          "app_name": "Random Chat", "time_dt": "2024-08-26T13:27:54.000Z"},
    "zscaler/sekoia_zia_web_ssl.json": {"class_uid": 4002, "severity_id": 4, "url.hostname": "a.et.nytimes.com", "url.categories": ["News and Media"],
                                        "malware": [{"name": "Threat Name 1", "classification": "Threat category 1"}]},
    # Netskope
    "netskope/sekoia_alert_dlp.json": {"class_uid": 2006, "severity_id": 3, "user.email_addr": "jdoe@netskope.com", "app_name": "LinkedIn",
                                       "file.name": "HighRes_QRCode_3.png", "policy.name": "Coach user QRCode in Social Media and IM",
                                       "finding_info.title": "ML-TYOC-QRCode"},
    "netskope/sekoia_alert_malsite.json": {"class_uid": 2004, "disposition_id": 2, "user.email_addr": "jane.doe@sekoia.io", "url.categories": ["Malicious Site"],
                                           "dst_endpoint.ip": "185.234.72.215"},
    "netskope/sekoia_alert_malware.json": {"class_uid": 2004, "severity_id": 4, "user.email_addr": "john.doe@example.org", "file.name": "eicarcom2.zip",
                                           "url.url_string": "secure.eicar.org/eicarcom2.zip"},
    "netskope/sekoia_alert_policy_block.json": {"class_uid": 6001, "disposition_id": 2, "app_name": "DNS Over HTTPS",
                                                "policy.name": "Block DoH - incompatibility with Netskope"},
    "netskope/sekoia_alert_useralert_share.json": {"class_uid": 6001, "activity_id": 8, "app_name": "WeTransfer", "file.name": "Client.exe",
                                                   "email.to": ["a@a.fr"], "user.email_addr": "john.doe@example.org"},
    "netskope/sekoia_event_audit_login_failed.json": {"class_uid": 3002, "status_id": 2, "user.name": "student13", "src_endpoint.ip": "4.5.6.7"},
    "netskope/sekoia_event_connection.json": {"class_uid": 4001, "app_name": "Swile", "policy.name": "bypass_ssl for regulation purpose"},
    "netskope/sekoia_transaction_s3_csv_long_query.log": {"class_uid": 4002, "activity_id": 3, "user.email_addr": "john.doe@example.com",
                                                          "url.hostname": "config.edge.skype.com", "policy.name": "Web Access Allow",
                                                          "time_dt": "2025-05-26T13:41:17.000Z"},
    "netskope/sekoia_transaction_w3c.log": {"class_uid": 4002, "activity_id": 6, "url.url_string": "https://www.bing.com/threshold/xls.aspx",
                                            "app_name": "Microsoft Bing", "url.categories": ["Search Engines"], "src_endpoint.location.city": "Roubaix"},
    # Okta
    "okta/sekoia_account_lock.json": {"class_uid": 3001, "activity_id": 9, "status_id": 2, "user.email_addr": "john.doe@example.com",
                                      "message": "Max sign in attempts exceeded", "src_endpoint.location.country": "France"},
    "okta/sekoia_auth_via_mfa.json": {"class_uid": 3002, "status_id": 1, "user.email_addr": "john.doe@example.org"},
    "okta/sekoia_legacy_login_minimal.json": {"class_uid": 3002, "user.email_addr": "admin@example.com", "time_dt": "2017-09-30T22:23:07.777Z"},
    "okta/sekoia_send_factor.json": {"class_uid": 3002, "activity_id": 99, "activity_name": "MFA Challenge"},
    "okta/sekoia_sso_failure.json": {"class_uid": 3002, "status_id": 2, "app_name": "OpenID Connect Client", "user.email_addr": "john.doe@example.org"},
    # a trailing backslash is not an address: the person is kept by name, not guessed
    "okta/sekoia_sso_with_trailing_backslash.json": {"class_uid": 3002, "user.name": "John Doe", "user.email_addr": None},
    "okta/sekoia_target_leading_whitespace.json": {"class_uid": 3002, "app_name": "Okta Dashboard"},
    # Microsoft Defender
    "microsoft_defender/sekoia_m365d_alert_evidence.json": {"class_uid": 2004, "severity_id": 2, "file.name": "splwow64.exe",
                                                            "finding_info.types": ["InitialAccess"]},
    "microsoft_defender/sekoia_m365d_alert_evidence_url.json": {"class_uid": 2004, "severity_id": 3, "finding_info.title": "[SOC][MDE] User bypass SmartScreen warning"},
    "microsoft_defender/sekoia_m365d_alert_info.json": {"class_uid": 2004, "severity_id": 1, "finding_info.types": ["DefenseEvasion"]},
    "microsoft_defender/sekoia_m365d_device_logon_failed.json": {"class_uid": 3002, "status_id": 2, "user.name": "user1", "src_endpoint.ip": "1.1.1.1"},
    "microsoft_defender/sekoia_m365d_device_process_macos.json": {"class_uid": 1007, "activity_id": 1, "process.name": "systemsettingsagent",
                                                                  "user.name": "user1", "device.hostname": "example.com"},
    "microsoft_defender/sekoia_m365d_email_delivered.json": {"class_uid": 4009, "activity_id": 2, "disposition_id": 1,
                                                             "actor.email_addr": "john.doe@company.com", "email.from": "john.doe@company.com"},
    "microsoft_defender/sekoia_m365d_identity_logon.json": {"class_uid": 3002, "status_id": 2, "user.email_addr": "test.user@test-test.test",
                                                            "dst_endpoint.port": 88, "app_name": "Active Directory"},
    "microsoft_defender/sekoia_m365d_registry_unicode.json": ("ignored", "not_behaviour: registry change made by a system account"),
    "microsoft_defender/sekoia_m365d_script_content.json": {"class_uid": 1007, "activity_name": "ScriptContent", "device.hostname": "example.com"},
    "microsoft_defender/sekoia_m365d_url_click.json": {"class_uid": 4010, "disposition_id": 1, "user.email_addr": "john.doe@example.com",
                                                       "url.url_string": "https://example.com/index.php?q=some+stuff"},
    # Proofpoint TAP
    "proofpoint_tap/sekoia_click_permitted.json": {"class_uid": 4010, "severity_id": 4, "disposition_id": 1, "user.email_addr": "bruce.wayne@pharmtech.zz",
                                                   "url.url_string": "http://badguy.zz/", "src_endpoint.ip": "1.1.1.1"},
    "proofpoint_tap/sekoia_message_delivered.json": [  # one event per recipient
        {"class_uid": 4009, "user.email_addr": "clark.kent@pharmtech.zz", "actor.email_addr": "badguy@evil.zz", "file.name": "Invoice for Pharmtech.pdf",
         "email.subject": "Please find a totally safe invoice attached.", "severity_id": 4},
        {"class_uid": 4009, "user.email_addr": "diana.prince@pharmtech.zz", "email.to": ["diana.prince@pharmtech.zz"]},
    ],
    "proofpoint_tap/sekoia_message_threatsinfomap.json": {"class_uid": 4009, "user.email_addr": "jane.doe@example.com", "email.subject": "TPS reports!",
                                                          "malware": [{"name": "http://some.threat.com", "classification": "malware"}]},
    # Optional vendors
    "mimecast/sekoia_av.json": {"class_uid": 4009, "malware": [{"name": "bad.virus.found"}], "user.email_addr": "john.doe@example.com"},
    "mimecast/sekoia_impersonation_protect.json": {"class_uid": 4009, "disposition_id": 3, "finding_info.types": ["impersonation"]},
    "mimecast/sekoia_process_multi_attachments.json": {"class_uid": 4009, "activity_id": 3},
    "mimecast/sekoia_receipt_rejected_nulls.json": {"class_uid": 4009, "disposition_id": 25, "message": "IP Found in RBL"},
    "mimecast/sekoia_url_protect_blocked.json": {"class_uid": 4010, "disposition_id": 2, "url.categories": ["Phishing & Fraud"], "user.email_addr": "johndoe@corp.net"},
    "paloalto/sekoia_globalprotect_csv.log": ("ignored", "not_behaviour: GlobalProtect gateway-config-release"),
    "paloalto/sekoia_threat_csv.log": {"class_uid": 2004, "severity_id": 4, "finding_info.title": "LDAP: User Login Brute Force Attempt(40005)", "app_name": "ldap"},
    "paloalto/sekoia_threat_file_cef.log": {"class_uid": 2004, "file.name": "page-icon.png", "app_name": "smtp", "dst_endpoint.port": 25},
    "paloalto/sekoia_threat_json.json": {"class_uid": 2004, "disposition_id": 2, "dst_endpoint.port": 21, "app_name": "ssh"},
    "paloalto/sekoia_traffic_syslog_csv.log": {"class_uid": 4001, "activity_id": 1, "app_name": "web-browsing", "time_dt": "2019-09-16T10:00:00.000Z"},
    "cisco_umbrella/sekoia_dns_embedded_newline.log": {"class_uid": 4003, "user.email_addr": "firstname.lastname@corp.com", "user.name": "Firstname LASTNAME"},
    "cisco_umbrella/sekoia_dns_tunnel_block.log": {"class_uid": 4003, "disposition_id": 2, "query.hostname": "something.net", "url.categories": ["DNS Tunneling VPN"]},
    "cisco_umbrella/sekoia_proxy_broken_lines.log": {"class_uid": 4002, "activity_id": 6, "url.url_string": "https://login.microsoftonline.com/common/oauth2/token",
                                                     "time_dt": "2024-03-03T20:28:52.000Z"},
    "cisco_umbrella/sekoia_proxy_escaped_quotes.log": {"class_uid": 4002, "metadata.truncated": True},
}  # fmt: skip
SIX_VENDORS = ("crowdstrike", "zscaler", "netskope", "okta", "microsoft_defender", "proofpoint_tap")


def _field(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _outcomes(samples: Path, name: str, source: str | None = None):
    vendor = source or name.split("/")[0]
    return normalize_payload((samples / name).read_text(encoding="utf-8"), vendor, "acme", RECEIVED)


def test_every_sample_file_is_covered(samples: Path):
    files = {f"{p.parent.name}/{p.name}" for p in samples.glob("*/*") if p.is_file()}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(samples: Path, name: str):
    results = _outcomes(samples, name)
    expected = EXPECTED[name]
    if isinstance(expected, tuple):
        kind, reason = expected
        assert [(o.kind, f"{o.reason}: {o.detail}"[: len(reason)]) for o in results] == [(kind, reason)]
        return
    expected = expected if isinstance(expected, list) else [expected]
    assert [o.kind for o in results] == ["normalized"] * len(expected), [o.summary() for o in results]
    for outcome, fields in zip(results, expected):
        event = outcome.event
        NormalizedEvent.model_validate(event)  # the output honours the schema
        assert event["metadata"]["tenant_uid"] == "acme"
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        for path, value in fields.items():
            assert _field(event, path) == value, f"{name}: {path}"


@pytest.mark.parametrize("vendor", SIX_VENDORS)
def test_each_of_the_six_vendors_gives_events(samples: Path, vendor: str):
    normalized = [
        o for p in sorted((samples / vendor).iterdir()) for o in _outcomes(samples, f"{vendor}/{p.name}") if o.kind == "normalized"
    ]
    assert len(normalized) >= 3


def test_median_normalized_size_is_under_one_kib(samples: Path):
    sizes = [len(o.event_json.encode()) for name in EXPECTED for o in _outcomes(samples, name) if o.kind == "normalized"]
    assert statistics.median(sizes) <= 1024, statistics.median(sizes)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_auto_detection_agrees_with_the_named_source(samples: Path, name: str):
    named = [o.summary() for o in _outcomes(samples, name)]
    auto = [o.summary() for o in _outcomes(samples, name, source="auto")]
    assert auto == named


# -- everything below runs on the repository's own examples (examples/events) ----------------------


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def test_the_same_raw_event_always_gets_the_same_uid():
    text = (EXAMPLES / "okta" / "user_account_lock.json").read_text()
    pretty = json.dumps(json.loads(text), indent=4)
    first = normalize_payload(text, "okta", "acme")[0].uid
    assert normalize_payload(text, "okta", "acme")[0].uid == first
    assert normalize_payload(pretty, "okta", "acme")[0].uid == first  # spacing does not matter
    assert normalize_payload(text, "okta", "globex")[0].uid != first  # tenants never share uids
    changed = json.loads(text)
    changed["uuid"] = "another"
    assert normalize_payload(json.dumps(changed), "okta", "acme")[0].uid != first


# -- the shapes vendors deliver ------------------------------------------------------------------


def test_api_responses_are_split_into_records():
    okta = _example("okta/user_account_lock.json")
    click = _example("proofpoint_tap/siem_clicks_permitted_response.json")["clicksPermitted"][0]
    message = _example("proofpoint_tap/siem_messages_delivered_response.json")["messagesDelivered"][0]
    cases = {
        "okta": [okta, {**okta, "uuid": "second"}],  # /api/v1/logs returns an array
        "crowdstrike": {"meta": {}, "resources": [
            {"composite_id": "cid:ind:a:1", "cid": "c", "agent_id": "a", "timestamp": "2026-01-01T00:00:00Z", "severity": 70,
             "severity_name": "High", "name": "Malware", "user_name": "jdoe", "user_principal": "jdoe@corp.example",
             "device": {"hostname": "LAPTOP-1"}, "filename": "bad.exe", "tactic": "Malware"},
            {"composite_id": "cid:ind:a:2", "cid": "c", "agent_id": "a", "timestamp": "2026-01-01T00:01:00Z", "severity": 30,
             "name": "Suspicious"}], "errors": []},
        "microsoft_defender": {"value": [{
            "id": "da1", "title": "Phishing link clicked", "severity": "high", "createdDateTime": "2026-01-01T00:00:00Z",
            "category": "InitialAccess", "serviceSource": "microsoftDefenderForOffice365",
            "evidence": [{"@odata.type": "#microsoft.graph.security.userEvidence", "userAccount": {"userPrincipalName": "amy@corp.example"}}]}]},
        "netskope": {"ok": 1, "result": [_example("netskope/alert_malsite_blocked.json"), _example("netskope/alert_malware_download_detected.json")]},
        "proofpoint_tap": {"queryEndTime": "2026-03-10T09:00:00Z", "clicksPermitted": [click], "messagesBlocked": [message]},
    }  # fmt: skip
    recipients = len(normalize_payload(json.dumps(message), "proofpoint_tap", "acme"))  # one event per recipient
    expected = {"okta": 2, "crowdstrike": 2, "microsoft_defender": 1, "netskope": 2, "proofpoint_tap": 1 + recipients}
    for source, payload in cases.items():
        for label in (source, "auto"):
            results = normalize_payload(json.dumps(payload), label, "acme")
            assert [o.kind for o in results] == ["normalized"] * expected[source], (source, label, [o.summary() for o in results])
    alert = normalize_payload(json.dumps(cases["crowdstrike"]), "crowdstrike", "acme")[0].event
    assert (alert["user"]["email_addr"], alert["device"]["hostname"], alert["severity_id"]) == ("jdoe@corp.example", "LAPTOP-1", 4)
    graph = normalize_payload(json.dumps(cases["microsoft_defender"]), "auto", "acme")[0].event
    assert (graph["user"]["email_addr"], graph["severity_id"]) == ("amy@corp.example", 4)
    pp = normalize_payload(json.dumps(cases["proofpoint_tap"]), "proofpoint_tap", "acme")
    messages = [o.event for o in pp if o.event["class_uid"] == 4009]
    assert messages and all(m["disposition_id"] == 2 for m in messages)  # the group it came in (messagesBlocked) says what happened


def test_newline_delimited_feeds_and_event_hub_batches():
    ndjson = "\n".join(json.dumps(_example(f"okta/{n}")) for n in ("user_account_lock.json", "security_threat_detected.json"))
    assert [o.kind for o in normalize_payload(ndjson, "okta", "acme")] == ["normalized"] * 2
    hub = {"records": [_example("microsoft_defender/eventhub_url_click_events.json")["records"][0],
                       _example("microsoft_defender/eventhub_alert_info_malware_prevented.json")]}  # fmt: skip
    assert [o.kind for o in normalize_payload(json.dumps(hub), "auto", "acme")] == ["normalized"] * 2


def test_w3c_files_with_directives():
    body = (EXAMPLES / "netskope" / "transaction_w3c_with_fields_header.log").read_text()
    payload = "#Software: Netskope\n#Version: 1.0\n" + body
    results = normalize_payload(payload, "netskope", "acme")
    assert [o.kind for o in results] == ["ignored"] * 3 + ["normalized"] * (len(body.strip().splitlines()) - 1)
    assert results[0].reason == IgnoreReason.NOT_EVENT and results[0].detail.startswith("W3C directive")


def test_long_strings_are_cut_and_the_event_says_so():
    record = _example("okta/user_account_lock.json")
    record["displayMessage"] = "é" * 10_000
    (result,) = normalize_payload(json.dumps(record), "okta", "acme")
    event = result.event
    assert len(event["message"]) == MAX_STRING and event["metadata"]["truncated"] is True
    untouched = normalize_payload(json.dumps(_example("okta/user_account_lock.json")), "okta", "acme")[0].event
    assert "truncated" not in untouched["metadata"]


# -- rejections: each reason, and the neighbours survive -------------------------------------------


def test_each_rejection_reason():
    good = _example("okta/user_account_lock.json")
    cases = {
        RejectReason.MALFORMED: ('{"eventType": ', "okta", "acme"),
        RejectReason.UNKNOWN_SOURCE: (json.dumps(good), "myspace", "acme"),
        RejectReason.MISSING_TENANT: (json.dumps(good), "okta", None),
        RejectReason.WRONG_TYPES: (json.dumps({**good, "published": 12.5e40}), "okta", "acme"),
        RejectReason.MISSING_FIELD: (json.dumps({k: v for k, v in good.items() if k != "eventType"}), "okta", "acme"),
        RejectReason.OVERSIZED: (json.dumps({**good, "displayMessage": "x" * MAX_RECORD_BYTES}), "okta", "acme"),
    }
    # every reason coachflow declares is exercised (unregistered_producer is decided by the normalize
    # function from the message's sender: test_pipeline)
    assert set(cases) == set(RejectReason) - {RejectReason.UNREGISTERED_PRODUCER}
    for reason, (body, source, tenant) in cases.items():
        (result,) = normalize_payload(body, source, tenant)
        assert (result.kind, result.reason) == ("rejected", reason), result.summary()
        assert result.detail and result.raw  # a reason a person can act on, and nothing lost
    (bad_tenant,) = normalize_payload(json.dumps(good), "okta", "Not A Tenant!")
    assert bad_tenant.reason == RejectReason.MISSING_TENANT and "invalid tenant id" in bad_tenant.detail
    (unknown,) = normalize_payload(json.dumps({"hello": "world"}), "auto", "acme")
    assert (unknown.reason, unknown.detail) == (RejectReason.UNKNOWN_SOURCE, "no vendor recognises this record")
    (not_object,) = normalize_payload("[42]", "okta", "acme")
    assert not_object.reason == RejectReason.WRONG_TYPES
    # JSON that no string can hold, and numbers no integer can: rejected, never a crash
    (surrogate,) = normalize_payload('{"eventType": "\\ud800"}', "okta", "acme")
    assert surrogate.reason == RejectReason.MALFORMED and "hex escape" in surrogate.detail
    alert = {**_example("netskope/alert_malsite_blocked.json"), "timestamp": "PLACEHOLDER"}
    (infinite,) = normalize_payload(json.dumps(alert).replace('"PLACEHOLDER"', "1e999"), "netskope", "acme")
    assert infinite.reason == RejectReason.WRONG_TYPES and "OverflowError" in infinite.detail


def test_each_ignore_reason():
    cases = {
        IgnoreReason.NOT_BEHAVIOUR: ((EXAMPLES / "zscaler" / "nss_tunnel_ipsec_samples.json").read_text(), "zscaler"),
        IgnoreReason.UNSUPPORTED_EVENT_TYPE: (
            json.dumps({**_example("okta/user_account_lock.json"), "eventType": "app.oauth2.token"}),
            "okta",
        ),
        IgnoreReason.NOT_EVENT: ("#Software: Netskope\n", "netskope"),
        IgnoreReason.EMPTY: ('{"value": []}', "microsoft_defender"),
    }
    assert set(cases) == set(IgnoreReason)  # every reason coachflow declares is exercised
    for reason, (body, source) in cases.items():
        outcomes = normalize_payload(body, source, "acme")
        assert outcomes and all((o.kind, o.reason) == ("ignored", reason) for o in outcomes), [o.summary() for o in outcomes]
        assert all(o.detail for o in outcomes)  # a reason a person can read


def test_a_bad_record_does_not_take_its_neighbours_down():
    good = _example("okta/user_account_lock.json")
    payload = [good, {**good, "uuid": "x", "published": ["not", "a", "time"]}, {**good, "uuid": "y"}]
    kinds = [o.kind for o in normalize_payload(json.dumps(payload), "okta", "acme")]
    assert kinds == ["normalized", "rejected", "normalized"]


# -- the CLI --------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_prints_one_json_line_per_outcome(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    detection = EXAMPLES / "crowdstrike" / "streaming_detection_summary_intel_domain.json"
    tunnel = EXAMPLES / "zscaler" / "nss_tunnel_ipsec_samples.json"
    result = _cli("normalize", "--source", "auto", "--tenant", "acme", str(detection), str(tunnel), str(bad))
    assert result.returncode == 0, result.stderr  # rejected records are output, not failures
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["metadata"]["tenant_uid"] == "acme" and lines[0]["class_uid"] == 2004
    assert lines[1] == {"outcome": "ignored", "source": "zscaler", "reason": "not_behaviour",
                        "detail": "tunnel telemetry describes network infrastructure, not a person"}  # fmt: skip
    assert lines[-1]["outcome"] == "rejected" and lines[-1]["reason"] == "malformed"
    expected = [o.summary() for f in (detection, tunnel, bad) for o in normalize_payload(f.read_text(), "auto", "acme")]
    assert lines == json.loads(json.dumps(expected))


def test_cli_usage_errors_exit_2():
    lock = str(EXAMPLES / "okta" / "user_account_lock.json")
    assert _cli("normalize", "--source", "nope", lock).returncode == 2
    assert _cli("normalize", "--source", "okta", "/does/not/exist").returncode == 2
    assert _cli("normalize", "--source", "okta", "--tenant", "BAD TENANT", lock).returncode == 2
    assert _cli("frobnicate").returncode == 2


def test_the_documented_examples_are_what_the_normalizer_produces():
    import re

    doc = (ROOT / "docs" / "event-schema.md").read_text()
    examples = re.findall(r"<!-- example: (\S+) -->\n```json\n(.*?)\n```", doc, re.S)
    assert {name.split("/")[0] for name, _ in examples} >= set(SIX_VENDORS)
    for name, text in examples:
        produced = normalize_payload((EXAMPLES / name).read_text(encoding="utf-8"), name.split("/")[0], "acme")[0].event
        assert json.loads(text) == produced, f"docs/event-schema.md is stale for {name}"


def test_zpa_user_activity_records():
    # No ZPA sample ships with ../shared/samples; this record follows the LSS "User Activity" log
    # format (field names from Zscaler's LSS documentation), values invented.
    record = {"LogTimestamp": "Thu Nov 20 10:15:42 2025", "Customer": "Acme", "SessionID": "s-1", "ConnectionID": "c-42",
              "InternalReason": "", "ConnectionStatus": "open", "Username": "amy@acme.example", "ServicePort": "443",
              "ClientPublicIP": "198.51.100.7", "Policy": "Finance apps", "Host": "erp.internal.acme.example",
              "Application": "ERP", "ServerPort": "443"}  # fmt: skip
    for source in ("zscaler", "auto"):
        (result,) = normalize_payload(json.dumps(record), source, "acme")
        event = result.event
        assert (event["class_uid"], event["activity_id"], event["disposition_id"]) == (4001, 1, 1)
        assert event["user"]["email_addr"] == "amy@acme.example" and event["app_name"] == "ERP"
        assert event["dst_endpoint"] == {"hostname": "erp.internal.acme.example", "port": 443}
        assert event["policy"]["name"] == "Finance apps" and event["time_dt"] == "2025-11-20T10:15:42.000Z"
    failed = {**record, "ConnectionStatus": "close", "InternalReason": "BRK_MT_SETUP_FAIL_APP_NOT_FOUND"}
    event = normalize_payload(json.dumps(failed), "zscaler", "acme")[0].event
    assert (event["activity_id"], event["disposition_id"], event["message"]) == (2, 2, "BRK_MT_SETUP_FAIL_APP_NOT_FOUND")
