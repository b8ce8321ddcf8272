"""``./build.sh demo``: the whole pipeline, end to end, on the embedded AWS.

Starts the embedded AWS and a webhook receiver, applies the local environment with Terraform, pushes
two tenants' rules (and acme's escalation ladder, examples/coaching/acme.yaml), sends vendor events (the repository's examples/events) for both tenants into the
raw-events queue, waits until every message was consumed and every execution finished, fires one
re-evaluation schedule, and prints what happened. Exits 0 only if every event reached an outcome
and what the pipeline reports agrees with what was sent. Leaves nothing running.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from emulator.clients import REGION
from emulator.scheduler import fire_now
from emulator.stack import DEFAULT_PORT, EXAMPLES, ROOT, LocalEnvironment, free_port, port_in_use, stop_group
from emulator.webhook_receiver import read_record
from handlers.ingest import envelope, normalize_payload

TIMEOUT = 180
# acme coaches its people on an escalation ladder (tip, micro-course, manager) with a daily cap.
COACHING = {"acme": EXAMPLES.parent / "coaching" / "acme.yaml"}

# (tenant, source, example file): vendor payloads as the integrations deliver them, from the
# repository's own examples (examples/events, documented in its INDEX.md). acme runs the whole starter
# pack; globex only its two CrowdStrike rules (one in shadow mode). Some notify, some match nothing,
# some are ignored; "auto" lets coachflow detect the vendor.
DEMO_EVENTS = [
    ("acme", "crowdstrike", "crowdstrike/streaming_epp_detection_malware_quarantined.json"),
    ("acme", "auto", "crowdstrike/streaming_detection_summary_intel_domain.json"),
    ("acme", "crowdstrike", "crowdstrike/streaming_epp_detection_ml_medium_severity.json"),
    ("acme", "crowdstrike", "crowdstrike/streaming_audit_events_stream.log"),
    ("acme", "zscaler", "zscaler/nss_web_online_chat_allowed.json"),
    ("acme", "auto", "zscaler/nss_web_threat_allowed.json"),
    ("acme", "zscaler", "zscaler/nss_tunnel_ipsec_samples.json"),
    ("acme", "netskope", "netskope/api_v2_alerts_dlp_response.json"),
    ("acme", "netskope", "netskope/alert_policy_useralert_wetransfer_upload.json"),
    ("acme", "auto", "netskope/alert_malsite_blocked.json"),
    ("acme", "netskope", "netskope/transaction_w3c_with_fields_header.log"),
    ("acme", "okta", "okta/logs_api_repeated_sign_in_failures.json"),
    ("acme", "okta", "okta/user_account_lock.json"),
    ("acme", "auto", "okta/logs_api_admin_and_app_events.json"),
    ("acme", "microsoft_defender", "microsoft_defender/eventhub_url_click_events.json"),
    ("acme", "microsoft_defender", "microsoft_defender/eventhub_alert_evidence_smartscreen_override.json"),
    ("acme", "auto", "microsoft_defender/eventhub_registry_and_inventory_records.json"),
    ("acme", "proofpoint_tap", "proofpoint_tap/siem_all_response.json"),
    ("acme", "paloalto", "paloalto/syslog_threat_csv.log"),
    ("acme", "auto", "cisco_umbrella/dns_logs_s3_export.log"),
    ("acme", "mimecast", "mimecast/siem_batch_receipt_process_delivery.log"),
    ("globex", "crowdstrike", "crowdstrike/streaming_epp_detection_ml_medium_severity.json"),
    ("globex", "auto", "crowdstrike/streaming_mobile_detection_intel_domain.json"),
    ("globex", "crowdstrike", "crowdstrike/alerts_api_get_alerts_response.json"),
    ("globex", "crowdstrike", "crowdstrike/fdr_sensor_events.log"),
    ("globex", "zscaler", "zscaler/nss_web_online_chat_allowed.json"),
    ("globex", "okta", "okta/user_account_lock.json"),
    ("globex", "paloalto", "paloalto/cortex_cef_forwarding.log"),
]
# A broken integration: not JSON at all. It must be rejected with a reason and dead-lettered.
BROKEN = ("globex", "okta", '{"eventType": "user.session.start", "published": ')
# Each tenant's integration sends with its own credentials; the embedded AWS reports the access key
# as the message's SenderId (AWS: the principal's id), and only registered producers speak for a
# tenant. acme's integration also tries to send a record naming globex: it is refused.
PRODUCERS = {"acme": "AKIDACMEINTEGRATION", "globex": "AKIDGLOBEXINTEGRATION"}
FORGED = ("globex", "okta", "okta/user_account_lock.json", PRODUCERS["acme"])


def _send(env: LocalEnvironment, queue_url: str, tenant: str, source: str, body: str, producer: str) -> None:
    session = boto3.session.Session(aws_access_key_id=producer, aws_secret_access_key="demo", region_name=REGION)
    sqs = session.client("sqs", endpoint_url=env.endpoint)
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=envelope(tenant, source))


def _queue_empty(env: LocalEnvironment, url: str) -> bool:
    attrs = env.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) == 0 and int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0


def _executions(env: LocalEnvironment, arn: str) -> list[dict[str, Any]]:
    sfn = env.client("stepfunctions")
    found = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        found.extend(page["executions"])
    return found


def _normalize_metrics(env: LocalEnvironment, log_group: str) -> Counter[str]:
    """Sum the outcome metrics the normalize function emitted (CloudWatch EMF lines in its logs)."""
    logs = env.client("logs")
    totals: Counter[str] = Counter()
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group):
        for entry in page["events"]:
            message = entry["message"]
            if '"_aws"' not in message:
                continue
            record = json.loads(message)
            for name in ("RecordsNormalized", "RecordsIgnored", "RecordsRejected"):
                value = record.get(name)
                if value is not None:
                    totals[name] += sum(value) if isinstance(value, list) else value
    return totals


def _wait(what: str, check: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def run() -> int:
    started = time.time()
    requested = os.environ.get("COACHFLOW_EMULATOR_PORT")
    port = int(requested) if requested else DEFAULT_PORT
    if not requested and port_in_use(port):
        port = free_port()
        print(f"port {DEFAULT_PORT} is busy; using {port} for this demo")
    env = LocalEnvironment(name="demo", port=port)
    receiver = None
    try:
        print(f"== starting the embedded AWS on {env.endpoint}")
        env.start()
        record = env.workdir / "webhook-received.jsonl"
        record.unlink(missing_ok=True)
        hook_port = free_port()
        receiver = subprocess.Popen(
            [sys.executable, "-m", "emulator", "webhook", "--port", str(hook_port), "--record", str(record)],
            cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        print("== terraform init + apply of terraform/environments/local (about a minute: SQS queues settle slowly)")
        t0 = time.time()
        out = env.apply()
        print(f"   applied in {time.time() - t0:.0f}s: state machine {out['state_machine_arn'].split(':')[-1]}")

        print("== pushing tenant rules (rules/tenants/*.yaml) and webhook signing secrets")
        secrets_client = env.client("secretsmanager")
        for tenant in ("acme", "globex"):
            secret_name = f"{out['webhook_secret_prefix']}{tenant}"
            # Generated per run, kept only in Secrets Manager: never in code, tfvars or state.
            secrets_client.create_secret(Name=secret_name, SecretString=secrets.token_hex(32))
            code = subprocess.call(
                [sys.executable, "-m", "cli", "rules", "push", "--tenant", tenant, str(ROOT / "rules" / "tenants" / f"{tenant}.yaml"),
                 "--table", out["rules_table"], "--endpoint", env.endpoint, "--webhook-url", f"http://127.0.0.1:{hook_port}/hooks/{tenant}"],
                cwd=ROOT, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if code != 0:
                raise RuntimeError(f"rules push for {tenant} failed")
            coaching = ["--coaching", str(COACHING[tenant])] if tenant in COACHING else []
            code = subprocess.call(
                [sys.executable, "-m", "cli", "tenant", "--tenant", tenant, "--producer", PRODUCERS[tenant], *coaching,
                 "--table", out["rules_table"], "--endpoint", env.endpoint],
                cwd=ROOT, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if code != 0:
                raise RuntimeError(f"registering the producer of {tenant} failed")

        print("== sending vendor events to the raw-events queue")
        expected: Counter[str] = Counter()
        vendors_seen, tenants_seen = set(), set()
        for tenant, source, sample in DEMO_EVENTS:
            body = (EXAMPLES / sample).read_text(encoding="utf-8")
            for outcome in normalize_payload(body, source, tenant):
                expected[outcome.kind] += 1
                vendors_seen.add(outcome.source)
            tenants_seen.add(tenant)
            _send(env, out["raw_events_queue_url"], tenant, source, body, PRODUCERS[tenant])
        tenant, source, body = BROKEN
        expected["rejected"] += 1
        _send(env, out["raw_events_queue_url"], tenant, source, body, PRODUCERS[tenant])
        tenant, source, sample, producer = FORGED
        expected["rejected"] += 1
        _send(env, out["raw_events_queue_url"], tenant, source, (EXAMPLES / sample).read_text(encoding="utf-8"), producer)
        sent = len(DEMO_EVENTS) + 2
        events_in = sum(expected.values())
        print(f"   {sent} messages, {events_in} records, vendors {sorted(vendors_seen)}, tenants {sorted(tenants_seen)}")

        print("== waiting for the pipeline")
        _wait("the raw-events queue to drain", lambda: _queue_empty(env, out["raw_events_queue_url"]))
        arn = out["state_machine_arn"]
        _wait("every execution to finish", lambda: all(e["status"] != "RUNNING" for e in _executions(env, arn)))

        schedule = out["schedule_names"]["acme"]
        print(f"== firing the re-evaluation schedule {schedule} now")
        started_arn = fire_now(env.endpoint, schedule, out["schedule_group"])
        sfn = env.client("stepfunctions")
        _wait("the re-evaluation to finish", lambda: sfn.describe_execution(executionArn=started_arn)["status"] != "RUNNING")

        return _summary(env, out, expected, events_in, record, hook_port, started)
    finally:
        if receiver is not None:
            stop_group(receiver.pid)
        env.stop()
        print("== stopped the embedded AWS and the webhook receiver")


def _summary(env: LocalEnvironment, out: dict[str, Any], expected: Counter[str], events_in: int, record: Path,
             hook_port: int, started: float) -> int:  # fmt: skip
    sfn = env.client("stepfunctions")
    metrics = _normalize_metrics(env, f"/aws/lambda/{out['function_names']['normalize']}")
    reported = {k: int(metrics[f"Records{k.capitalize()}"]) for k in ("normalized", "ignored", "rejected")}
    dlq = env.client("sqs").receive_message(QueueUrl=out["raw_events_dlq_url"], MaxNumberOfMessages=10,
                                            MessageAttributeNames=["All"], VisibilityTimeout=0).get("Messages", [])  # fmt: skip
    rows: list[str] = []
    statuses: Counter[str] = Counter()
    matched_runs = quiet_runs = delivered = 0
    for execution in sorted(_executions(env, out["state_machine_arn"]), key=lambda e: e["name"]):
        detail = sfn.describe_execution(executionArn=execution["executionArn"])
        statuses[detail["status"]] += 1
        data = json.loads(detail.get("input") or "{}")
        delivered += json.loads(detail.get("output") or "{}").get("delivered", 0)
        history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        went = [e.get("stateEnteredEventDetails", {}).get("name") for e in history if e["type"].endswith("StateEntered")]
        notified = "TriggerNotifications" in went
        matched_runs += notified
        quiet_runs += not notified and "Success" in went
        rows.append(f"   {detail['status']:<9} {execution['name'][:48]:<48} {data.get('mode', '?'):<10} "
                    f"events={len(data.get('events') or []):<3} path={' > '.join(s for s in went if s)}")  # fmt: skip
    received = read_record(record)
    by_path = Counter(r["path"] for r in received)

    print("\n================ coachflow demo summary ================")
    print(f"events in:         {events_in} records in {len(DEMO_EVENTS) + 2} messages")
    print(f"normalize stage:   normalized={reported['normalized']} ignored={reported['ignored']} rejected={reported['rejected']}"
          f"   (expected {dict(expected)})")  # fmt: skip
    for message in dlq:
        attrs = message.get("MessageAttributes", {})
        reason = attrs.get("rejection_reason", {}).get("StringValue")
        detail = attrs.get("rejection_detail", {}).get("StringValue")
        print(f"   dead-lettered: tenant={attrs.get('tenant_id', {}).get('StringValue')} reason={reason}: {detail}")
    print(f"executions:        {sum(statuses.values())} ({', '.join(f'{k}={v}' for k, v in sorted(statuses.items()))})")
    print("\n".join(rows))
    print(f"matched+notified:  {matched_runs} executions; no match: {quiet_runs} executions")
    print(f"notifications:     {delivered} delivered (per TriggerNotifications), {len(received)} received over HTTP")
    for path, count in sorted(by_path.items()):
        print(f"   {count} x POST http://127.0.0.1:{hook_port}{path}")
    for entry in received[:3]:
        body = json.loads(entry["body"])
        print(f"   e.g. {body['rule_id']} -> {body['user'].get('email_addr') or body['user'].get('name')}: "
              f"{body['actions'][0]['message'][:90]}")  # fmt: skip
    rungs = Counter(json.loads(e["body"]).get("escalation", {}).get("level", "-") for e in received)
    print(f"escalation:        {', '.join(f'{level}={n}' for level, n in sorted(rungs.items()))}   (acme's ladder; '-': globex has none)")
    for entry in received:
        body = json.loads(entry["body"])
        if (body.get("escalation") or {}).get("level") in ("training", "manager"):
            kinds = ", ".join(a["type"] + (f" {a['training_id']}" if a.get("training_id") else "") for a in body["actions"])
            print(f"   e.g. {body['user'].get('email_addr')}, match {body['escalation']['count']} in 30 days: "
                  f"{body['escalation']['level']} ({kinds})")  # fmt: skip
            break
    print(f"elapsed:           {time.time() - started:.0f}s")

    problems = []
    if reported != {k: expected[k] for k in ("normalized", "ignored", "rejected")}:
        problems.append(f"outcomes reported by the pipeline {reported} differ from the outcomes of what was sent {dict(expected)}")
    if len(dlq) != expected["rejected"]:
        problems.append(f"{expected['rejected']} rejected records but {len(dlq)} in the dead-letter queue")
    if statuses.get("RUNNING") or statuses.get("FAILED") or statuses.get("TIMED_OUT"):
        problems.append(f"executions did not all succeed: {dict(statuses)}")
    if matched_runs < 1 or quiet_runs < 1:
        problems.append("expected at least one execution that notified and one that matched nothing")
    if not rungs.keys() & {"training", "manager"}:
        problems.append(f"expected acme's escalation ladder to climb past a tip: {dict(rungs)}")
    if len(received) != delivered or not received:
        problems.append(f"TriggerNotifications reported {delivered} deliveries but the receiver got {len(received)}")
    if problems:
        print("\nDEMO FAILED:\n  - " + "\n  - ".join(problems))
        return 1
    print("\nevery event reached exactly one outcome; the receiver got every notification.")
    return 0


if __name__ == "__main__":
    sys.exit(run())
