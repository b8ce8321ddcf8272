"""Lambda ``CheckEventsForRuleMatch``: a batch of one tenant's events -> the matches to notify.

Input (the execution input): ``{"mode": "events", "tenant_id", "batch_id", "events": [...]}``, or
``{"mode": "reevaluate", "tenant_id", ...}`` from the tenant's schedule. The tenant's rules are
loaded from DynamoDB (cached per warm Lambda, reloaded when the rule-set version changes), matched
(``handlers.rules``), then thresholds, suppression and shadow mode are applied
(``handlers.rules.state``). In re-evaluation mode the notifications that could not be delivered
before are handed to TriggerNotifications again.

Output: ``{"mode", "tenant_id", "batch_id", "events", "decisions", "match_count", "matches"}``;
when the matches would not fit in the state output, they go to S3 and ``matches_ref`` points there.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.conditions import Attr, Key

from handlers import aws, notify
from handlers.dynamo import pages
from handlers.rules.state import RuleState
from handlers.rules.store import RuleStore
from handlers.tenancy import tenant_of

logger = Logger()
metrics = Metrics()
OUTPUT_CAP = 240_000  # the Lambda task result is wrapped (Payload, StatusCode, headers) under the 256 KiB cap
MAX_DELIVERY_ATTEMPTS = 10


@functools.cache
def _rules() -> RuleStore:
    """One store per execution environment: its cache of compiled rules survives warm starts."""
    return RuleStore(aws.resource("dynamodb").Table(aws.setting("RULES_TABLE")))


def _state_table() -> Any:
    return aws.resource("dynamodb").Table(aws.setting("STATE_TABLE"))


def _events(batch: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    for item in batch.get("events") or []:
        pointer = item.get("claim_check") if isinstance(item, dict) else None
        if pointer:
            item = aws.get_json(pointer["bucket"], pointer["key"])
        events.append(item)
    return events


def evaluate(tenant: str, events: list[dict[str, Any]], store: RuleStore, state: RuleState) -> tuple[list[dict[str, Any]], Counter]:
    """The pure-ish core: match every event against the tenant's rules and decide each match."""
    ruleset = store.load(tenant)
    if not ruleset.rules:
        logger.warning("tenant has no rules: its events are evaluated against nothing", extra={"version": ruleset.version})
    decisions: Counter = Counter()
    matches = []
    for event in events:
        if (event.get("metadata") or {}).get("tenant_uid") != tenant:
            # Never evaluate another tenant's event with this tenant's rules.
            decisions["foreign_tenant"] += 1
            logger.error("event of another tenant in this batch; skipped", extra={"event_uid": event.get("uid")})
            continue
        for rule_id in ruleset.matcher.match(event):
            rule = ruleset.rules[rule_id]
            decision = state.decide(rule, event)
            decisions[decision] += 1
            logger.debug("rule matched", extra={"rule_id": rule_id, "event_uid": event["uid"], "decision": decision})
            if decision == "notify":
                matches.append(notify.match_record(tenant, rule, event))
    return matches, decisions


def _pending(tenant: str, table: Any) -> list[dict[str, Any]]:
    """Notifications to retry (re-evaluation mode): failed or deferred ones, and ones whose
    delivery lease expired (the function delivering them died)."""
    retry = Attr("status").eq("pending") | (Attr("status").eq("sending") & Attr("lease_until").lt(int(time.time())))
    query = pages(table, KeyConditionExpression=Key("pk").eq(notify.ledger_partition(tenant)),
                  FilterExpression=retry & Attr("attempts").lt(MAX_DELIVERY_ATTEMPTS), ConsistentRead=True)  # fmt: skip
    return [json.loads(item["match"]) for page in query for item in page["Items"]]


def _fit(output: dict[str, Any], tenant: str) -> dict[str, Any]:
    size = len(json.dumps(output, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size <= OUTPUT_CAP:
        return output
    bucket, key = aws.setting("CLAIMS_BUCKET"), f"matches/{tenant}/{output['batch_id']}.json"
    body = json.dumps(output.pop("matches"), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    aws.put_bytes(bucket, key, body)
    output["matches_ref"] = {"bucket": bucket, "key": key, "bytes": len(body)}
    return output


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant = tenant_of(event)
    mode = event.get("mode", "events")
    logger.append_keys(tenant_id=tenant, mode=mode)
    if mode == "reevaluate":
        matches = _pending(tenant, _state_table())
        output: dict[str, Any] = {
            "mode": mode,
            "tenant_id": tenant,
            "batch_id": f"reevaluate-{event.get('scheduled_time') or 'manual'}",
            "events": 0,
            "decisions": {"retry": len(matches)},
        }
    elif mode == "events":
        events = _events(event)
        matches, decisions = evaluate(tenant, events, _rules(), RuleState(_state_table(), tenant))
        metrics.add_metric(name="EventsEvaluated", unit=MetricUnit.Count, value=len(events))
        for name, value in decisions.items():
            metrics.add_metric(name=f"Decision_{name}", unit=MetricUnit.Count, value=value)
        output = {"mode": mode, "tenant_id": tenant, "batch_id": event.get("batch_id", ""), "events": len(events),
                  "decisions": dict(decisions)}  # fmt: skip
        logger.info("batch evaluated", extra={"events": len(events), "decisions": dict(decisions)})
    else:
        raise ValueError(f"unknown mode {mode!r:.40}; expected 'events' or 'reevaluate'")
    output["match_count"] = len(matches)
    output["matches"] = matches
    return _fit(output, tenant)
