"""Lambda ``CheckEventsForRuleMatch``: a batch of one tenant's events -> the matches to notify.

Input (the execution input): ``{"mode": "events", "tenant_id", "batch_id", "events": [...]}``, or
``{"mode": "reevaluate", "tenant_id", ...}`` from the tenant's schedule. The tenant's rules are
loaded from DynamoDB (cached per warm Lambda, reloaded when the rule-set version changes), matched
(``handlers.rules``), then thresholds, suppression and shadow mode are applied
(``handlers.rules.state``), then the tenant's frequency cap and escalation ladder, when its settings
have them (``handlers.coaching_state``). In re-evaluation mode the notifications that could not be delivered
before are handed to TriggerNotifications again.

Output: ``{"mode", "tenant_id", "batch_id", "events", "decisions", "match_count",
"trigger_payload_exists", "matches"}``;
when the matches would not fit in the state output, they go to S3 and ``matches`` is a claim-check
pointer (``handlers.claim_check``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import aws, claim_check, tenant_settings
from handlers.coaching_state import CoachingState
from handlers.ledger import Ledger
from handlers.limits import TASK_OUTPUT_BYTES
from handlers.rules.evaluate import evaluate
from handlers.rules.state import RuleState
from handlers.rules.store import RuleStore
from handlers.task_errors import surfaced
from handlers.tenancy import tenant_of

logger = Logger()
metrics = Metrics()


@functools.cache
def _rules() -> RuleStore:
    """One store per execution environment: its cache of compiled rules survives warm starts."""
    return RuleStore(aws.resource("dynamodb").Table(aws.setting("RULES_TABLE")))


def _state_table() -> Any:
    return aws.resource("dynamodb").Table(aws.setting("STATE_TABLE"))


def _events(tenant: str, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's events, claim-checked ones fetched from the tenant's part of the claims bucket."""
    events = []
    for item in batch.get("events") or []:
        pointer = claim_check.pointer_of(item)
        if pointer is not None:
            item = json.loads(claim_check.get(aws.claims_bucket(), pointer, claim_check.Kind.EVENTS, tenant))
        events.append(item)
    return events


def _fit(output: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The output as it is when it fits the state output cap, else with its matches claim-checked."""
    # Measured as the Lambda runtime serializes a result (json.dumps: non-ASCII escaped, the longest form).
    size = len(json.dumps(output).encode("utf-8"))
    if size <= TASK_OUTPUT_BYTES:
        return output
    body = json.dumps(output["matches"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    name = f"{output['batch_id']}.json"
    output["matches"] = claim_check.put(aws.claims_bucket(), claim_check.Kind.MATCHES, tenant, name, body).to_dict()
    return output


@metrics.log_metrics
@logger.inject_lambda_context
@surfaced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant = tenant_of(event)
    mode = event.get("mode", "events")
    logger.append_keys(tenant_id=tenant, mode=mode)
    if mode == "reevaluate":
        matches = Ledger(_state_table(), tenant).pending()
        output: dict[str, Any] = {
            "mode": mode,
            "tenant_id": tenant,
            "batch_id": f"reevaluate-{event.get('scheduled_time') or 'manual'}",
            "events": 0,
            "decisions": {"retry": len(matches)},
        }
    elif mode == "events":
        events = _events(tenant, event)
        store = _rules()
        settings = tenant_settings.read(store.table, tenant)
        ruleset = store.load(tenant, settings)
        if not ruleset.rules:
            logger.warning("tenant has no rules: its events are evaluated against nothing", extra={"version": ruleset.version})
        coaching = settings.coaching()
        coach = CoachingState(_state_table(), tenant, coaching).decide if coaching.enabled else None
        escalate_to = coaching.escalation.escalate_to if coaching.escalation else None
        result = evaluate(tenant, events, ruleset, RuleState(_state_table(), tenant).decide, coach, escalate_to)
        for uid in result.foreign:
            logger.error("event of another tenant in this batch; skipped", extra={"event_uid": uid})
        matches = result.matches
        metrics.add_metric(name="EventsEvaluated", unit=MetricUnit.Count, value=len(events))
        for name, value in result.decisions.items():
            metrics.add_metric(name=f"Decision_{name}", unit=MetricUnit.Count, value=value)
        decisions = dict(result.decisions)
        output = {"mode": mode, "tenant_id": tenant, "batch_id": event.get("batch_id", ""), "events": len(events), "decisions": decisions}
        logger.info("batch evaluated", extra={"events": len(events), "decisions": decisions})
    else:
        raise ValueError(f"unknown mode {mode!r:.40}; expected 'events' or 'reevaluate'")
    output["match_count"] = len(matches)
    output["trigger_payload_exists"] = bool(matches)  # FoundMatchingRules chooses on it
    output["matches"] = matches
    return _fit(output, tenant)
