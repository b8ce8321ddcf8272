"""``./build.sh demo``: the whole pipeline, end to end, on the embedded AWS.

Starts the embedded AWS and a receiver on 127.0.0.1 (playing the tenants' webhooks, Slack's Web API,
a Teams workflow and a learning platform), applies the local environment with Terraform, pushes two
tenants' rules, acme's escalation ladder (examples/coaching/acme.yaml) and both tenants' channels
(examples/channels: acme by email through SES, Slack direct messages, its webhook and its learning
platform; globex on Teams), sends vendor events (the repository's examples/events) for both tenants
into the raw-events queue, waits until every message was consumed and every execution finished,
fires one re-evaluation schedule, and prints what happened. Exits 0 only if every event reached an
outcome, what the pipeline reports agrees with what was sent, and every delivery the pipeline
reports arrived (the receiver's record, SES's sent messages). Leaves nothing running.
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
import yaml

from emulator import observe, report
from emulator.clients import REGION
from emulator.scheduler import fire_now
from emulator.stack import DEFAULT_PORT, EXAMPLES, ROOT, LocalEnvironment, free_port, port_in_use, stop_group
from emulator.webhook_receiver import read_record
from handlers.ingest import envelope, normalize_payload

TIMEOUT = 180
# acme coaches its people on an escalation ladder (tip, micro-course, manager) with a daily cap.
COACHING = {"acme": EXAMPLES.parent / "coaching" / "acme.yaml"}
CHANNELS = {tenant: EXAMPLES.parent / "channels" / f"{tenant}.yaml" for tenant in ("acme", "globex")}

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


def _channel_secrets(tenant: str, hook: str) -> dict[str, str]:
    """The tenant's secrets, by name below the tenants' prefix: its webhook signing secret and its
    channels' credentials, pointing at the receiver (as operators would create them in AWS)."""
    found = {tenant: secrets.token_hex(32)}
    if tenant == "acme":
        found["acme/slack"] = json.dumps({"bot_token": f"xoxb-demo-{secrets.token_hex(8)}"})
        found["acme/learning"] = json.dumps({"url": f"{hook}/learning/acme/assignments", "token": secrets.token_hex(16)})
    if tenant == "globex":
        found["globex/teams"] = json.dumps({"webhook_url": f"{hook}/teams/globex/workflow"})
    return found


def _local_channels(path: Path, hook: str, tenant: str, workdir: Path) -> Path:
    """The tenant's channels file as it is, but for Slack's Web API: the receiver plays it here."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "slack" in document:
        document["slack"]["api_url"] = f"{hook}/slack-api/{tenant}"
    local = workdir / f"channels-{tenant}.yaml"
    local.write_text(yaml.safe_dump(document), encoding="utf-8")
    return local


def _by_channel(received: list[dict[str, Any]], emails: list[dict[str, Any]]) -> dict[str, list[str]]:
    """What arrived, per channel, each with a one-line description (Slack's user lookups are not
    deliveries: a direct message is the chat.postMessage after one)."""
    arrived: dict[str, list[str]] = {"email": [], "slack": [], "teams": [], "webhook": [], "learning": []}
    for m in emails:
        arrived["email"].append(f"to {m['destinations']['ToAddresses'][0]}: {m['subject'][:70]!r}")
    for entry in received:
        path = entry["path"]
        if path.endswith("/users.lookupByEmail"):
            continue
        body = json.loads(entry["body"])
        if path.startswith("/hooks/"):
            arrived["webhook"].append(f"{path}: {body['rule_id']} for {body['user'].get('email_addr') or body['user'].get('name')}")
        elif path.endswith("/chat.postMessage"):
            arrived["slack"].append(f"DM {body['channel']}: {body['blocks'][1]['text']['text'][:70]!r}")
        elif path.startswith("/teams/"):
            arrived["teams"].append(f"card: {body['attachments'][0]['content']['body'][0]['text'][:70]!r}")
        elif path.startswith("/learning/"):
            arrived["learning"].append(f"course {body['course_id']} for {body['user'].get('email_addr')}")
    return arrived


def _dead_notifications(env: LocalEnvironment, url: str) -> list[str]:
    """The reasons of what waits in the dead-notifications queue (left there: redrive shows it)."""
    sqs = env.client("sqs")
    reasons: dict[str, str] = {}
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                       VisibilityTimeout=30).get("Messages", [])  # fmt: skip
        if not messages:
            break
        for message in messages:
            attrs = message.get("MessageAttributes", {})
            reasons[attrs["notification_id"]["StringValue"]] = attrs["reason"]["StringValue"]
    return list(reasons.values())


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

        print("== pushing tenant rules (rules/tenants/*.yaml), channels (examples/channels) and their secrets")
        secrets_client = env.client("secretsmanager")
        hook = f"http://127.0.0.1:{hook_port}"
        for tenant in ("acme", "globex"):
            # Generated per run, kept only in Secrets Manager: never in code, tfvars or state.
            for name, value in _channel_secrets(tenant, hook).items():
                secrets_client.create_secret(Name=f"{out['webhook_secret_prefix']}{name}", SecretString=value)
            code = subprocess.call(
                [sys.executable, "-m", "cli", "rules", "push", "--tenant", tenant, str(ROOT / "rules" / "tenants" / f"{tenant}.yaml"),
                 "--table", out["rules_table"], "--endpoint", env.endpoint, "--webhook-url", f"http://127.0.0.1:{hook_port}/hooks/{tenant}"],
                cwd=ROOT, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            if code != 0:
                raise RuntimeError(f"rules push for {tenant} failed")
            coaching = ["--coaching", str(COACHING[tenant])] if tenant in COACHING else []
            channels_file = _local_channels(CHANNELS[tenant], hook, tenant, env.workdir)
            code = subprocess.call(
                [sys.executable, "-m", "cli", "tenant", "--tenant", tenant, "--producer", PRODUCERS[tenant], *coaching,
                 "--channels", str(channels_file), "--table", out["rules_table"], "--endpoint", env.endpoint],
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

        code = _summary(env, out, expected, events_in, record, hook_port, started)
        print(f"report:            {report.write(observe.Environment.of(env), report.default_path('demo'))}   (./build.sh screenshot)")
        return code
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
    matched_runs = quiet_runs = delivered = dead_lettered = 0
    for execution in sorted(_executions(env, out["state_machine_arn"]), key=lambda e: e["name"]):
        detail = sfn.describe_execution(executionArn=execution["executionArn"])
        statuses[detail["status"]] += 1
        data = json.loads(detail.get("input") or "{}")
        result = json.loads(detail.get("output") or "{}")
        delivered += result.get("delivered", 0)
        dead_lettered += result.get("dead_lettered", 0)
        history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        went = [e.get("stateEnteredEventDetails", {}).get("name") for e in history if e["type"].endswith("StateEntered")]
        notified = "TriggerNotifications" in went
        matched_runs += notified
        quiet_runs += not notified and "Success" in went
        rows.append(f"   {detail['status']:<9} {execution['name'][:48]:<48} {data.get('mode', '?'):<10} "
                    f"events={len(data.get('events') or []):<3} path={' > '.join(s for s in went if s)}")  # fmt: skip
    received = read_record(record)
    arrived = _by_channel(received, env.sent_emails())
    dead = _dead_notifications(env, out["dead_notifications_queue_url"])

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
    total = sum(len(v) for v in arrived.values())
    print(f"deliveries:        {delivered} delivered (per TriggerNotifications), {total} arrived; "
          f"{dead_lettered} dead-lettered with a reason")  # fmt: skip
    for channel, items in sorted(arrived.items()):
        print(f"   {channel:<9} {len(items):>3}   e.g. {items[0]}" if items else f"   {channel:<9}   0")
    for reason, count in sorted(Counter(dead).items()):
        print(f"   not deliverable ({count}): {reason}")
    webhook_bodies = [json.loads(r["body"]) for r in received if r["path"].startswith("/hooks/")]
    rungs = Counter((body.get("escalation") or {}).get("level", "-") for body in webhook_bodies)
    print(f"escalation:        {', '.join(f'{level}={n}' for level, n in sorted(rungs.items()))}   (acme's ladder, seen by its webhook)")
    for body in webhook_bodies:
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
    if total != delivered or not total:
        problems.append(f"TriggerNotifications reported {delivered} deliveries but {total} arrived (receiver and SES)")
    if len([c for c, items in arrived.items() if items]) < 3:
        problems.append(f"expected deliveries on at least three channels: {sorted(c for c, items in arrived.items() if items)}")
    if any(not 200 <= (r["status"] or 0) < 300 for r in received):
        problems.append("the receiver answered something other than 2xx: the demo injects no faults")
    if len(dead) != dead_lettered:
        problems.append(f"{dead_lettered} deliveries dead-lettered but {len(dead)} in the dead-notifications queue")
    if problems:
        print("\nDEMO FAILED:\n  - " + "\n  - ".join(problems))
        return 1
    print("\nevery event reached exactly one outcome; every delivery arrived or was dead-lettered with its reason.")
    return 0


if __name__ == "__main__":
    sys.exit(run())
