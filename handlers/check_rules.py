"""Lambda ``CheckEventsForRuleMatch``: a batch of one tenant's events -> the matches to notify.

Input (the execution input): ``{"mode": "events", "tenant_id", "batch_id", "events": [...]}``, or
``{"mode": "reevaluate", "tenant_id", "scheduled_time"}`` from the tenant's schedule or the sweep.
The tenant's rules are loaded from DynamoDB (cached per warm Lambda, reloaded when the rule-set
version changes), matched (``handlers.rules``), then thresholds, suppression and shadow mode are
applied (``handlers.rules.state``), then the tenant's frequency cap and escalation ladder, when its
settings have them (``handlers.coaching_state``). Each batch's events are first kept in the
tenant's recent-events buffer (``handlers.reevaluation``).

In re-evaluation mode: when the tenant's rule set changed since its buffered events were evaluated,
its new and changed rules are re-run over them through the same path (bounded: at most
``REEVALUATION_MAX_EVENTS`` events, oldest batches first, and stopping before the deadline; the rest
continues at the next re-evaluation); and the notifications that could not be delivered before are
handed to TriggerNotifications again, with the new matches.

Output: ``{"mode", "tenant_id", "batch_id", "events", "decisions", "match_count",
"trigger_payload_exists", "matches"}`` (and ``reevaluation``: what the re-run did, in re-evaluation
mode); when the matches would not fit in the state output, they go to S3 and ``matches`` is a
claim-check pointer (``handlers.claim_check``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from handlers import aws, claim_check, tenant_settings
from handlers.coaching_state import CoachingState
from handlers.ledger import Ledger
from handlers.limits import TASK_OUTPUT_BYTES
from handlers.reevaluation import LEASE_SECONDS, Reevaluation, buffer
from handlers.rules.evaluate import Evaluation, evaluate
from handlers.rules.model import Rule
from handlers.rules.ruleset import RuleSet, build
from handlers.rules.state import RuleState
from handlers.rules.store import RuleStore
from handlers.task_errors import surfaced
from handlers.tenancy import tenant_of
from handlers.tracing import annotate, tracer

logger = Logger()
metrics = Metrics()
metrics.set_default_dimensions(**aws.metric_dimensions())
BUFFER_SECONDS = 86400  # how long batches stay in the recent-events buffer (Terraform: reevaluation.buffer_days)
MAX_REEVALUATED_EVENTS = 10_000  # events one re-evaluation re-runs at most (Terraform: reevaluation.max_events)
VERSION_CHECKS = 3  # rule-set versions one batch follows before it is evaluated (pushes seconds apart)


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


def _buffer_seconds() -> int:
    return int(aws.setting("REEVALUATION_BUFFER_SECONDS", str(BUFFER_SECONDS)))


def _evaluator(tenant: str, settings: tenant_settings.TenantSettings) -> Callable[[RuleSet, list[dict[str, Any]]], Evaluation]:
    """Evaluation of events against (a part of) the tenant's rules: matching, the rule's state
    (thresholds, suppression, shadow), then the tenant's coaching (frequency cap, ladder)."""
    coaching = settings.coaching()
    coach = CoachingState(_state_table(), tenant, coaching).decide if coaching.enabled else None
    escalate_to = coaching.escalation.escalate_to if coaching.escalation else None
    decide = RuleState(_state_table(), tenant, keep_seconds=_buffer_seconds()).decide

    def run(rules: RuleSet, events: list[dict[str, Any]]) -> Evaluation:
        with tracer.provider.in_subsegment("## evaluate"):
            result = evaluate(tenant, events, rules, decide, coach, escalate_to)
            annotate(events=len(events), rules=len(rules.rules), matches=len(result.matches))
            return result

    return run


@tracer.capture_method(capture_response=False)  # the tenant's settings and rules: configuration, kept out of traces
def _load(tenant: str) -> tuple[tenant_settings.TenantSettings, RuleSet]:
    """The tenant's settings and rules; a rule set this function had not loaded yet marks the
    tenant due for a re-evaluation (the sweep re-runs its recent events under it)."""
    store = _rules()
    settings = tenant_settings.read(store.table, tenant)
    known = store.cached_version(tenant)
    ruleset = store.load(tenant, settings)
    if known != ruleset.version and ruleset.rules and Reevaluation(_state_table(), aws.claims_bucket(), tenant).notice(ruleset.version):
        logger.info("new rule set: tenant due for a re-evaluation", extra={"version": ruleset.version})
    return settings, ruleset


def _buffer_then_confirm(tenant: str, batch_id: str, events: list[dict[str, Any]]) -> tuple[tenant_settings.TenantSettings, RuleSet]:
    """Keep the batch in the recent-events buffer under the version it will be evaluated with, then
    read the version again: if a push came in between, follow it (and keep the batch under the new
    version too). So no batch is evaluated under a version older than the one current when its
    buffer object was written: a re-run of a newer version, which starts after that version's push,
    always finds it (``handlers.reevaluation``, the race)."""
    settings, ruleset = _load(tenant)
    for _ in range(VERSION_CHECKS):
        try:
            buffer(aws.claims_bucket(), tenant, batch_id, ruleset, events)
        except ClientError:
            # Coaching now matters more than a possible re-run later: evaluate the batch anyway.
            logger.exception("batch not kept for re-evaluation", extra={"batch_id": batch_id})
            metrics.add_metric(name="RecentEventsNotBuffered", unit=MetricUnit.Count, value=len(events))
        latest, current = _load(tenant)
        if current.version == ruleset.version:
            break
        logger.info("rule set pushed while the batch was evaluated: following it", extra={"from": ruleset.version, "to": current.version})
        settings, ruleset = latest, current
    return settings, ruleset


def _events_mode(tenant: str, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = _events(tenant, event)
    batch_id = str(event.get("batch_id", ""))
    settings, ruleset = _buffer_then_confirm(tenant, batch_id, events)
    if not ruleset.rules:
        logger.warning("tenant has no rules: its events are evaluated against nothing", extra={"version": ruleset.version})
    result = _evaluator(tenant, settings)(ruleset, events)
    for uid in result.foreign:
        logger.error("event of another tenant in this batch; skipped", extra={"event_uid": uid})
    metrics.add_metric(name="EventsEvaluated", unit=MetricUnit.Count, value=len(events))
    for name, value in result.decisions.items():
        metrics.add_metric(name=f"Decision_{name}", unit=MetricUnit.Count, value=value)
    decisions = dict(result.decisions)
    logger.info("batch evaluated", extra={"events": len(events), "decisions": decisions})
    output = {"mode": "events", "tenant_id": tenant, "batch_id": batch_id, "events": len(events), "decisions": decisions}
    return output, result.matches


def _reevaluate_mode(tenant: str, event: dict[str, Any], context: LambdaContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    settings, ruleset = _load(tenant)
    evaluator = _evaluator(tenant, settings)

    def evaluate_rules(rules: list[Rule], events: list[dict[str, Any]]) -> Evaluation:
        return evaluator(build(tenant, ruleset.version, rules), events)

    rerun = Reevaluation(
        _state_table(), aws.claims_bucket(), tenant, lease_seconds=int(aws.setting("REEVALUATION_LEASE_SECONDS", str(LEASE_SECONDS)))
    ).run(
        ruleset,
        evaluate_rules,
        context.get_remaining_time_in_millis,
        max_events=int(aws.setting("REEVALUATION_MAX_EVENTS", str(MAX_REEVALUATED_EVENTS))),
        retention_seconds=_buffer_seconds(),
    )
    pending = Ledger(_state_table(), tenant).pending()
    # A pending notification the re-run found again is handed over once.
    fresh = {m["notification_id"] for m in pending}
    matches = pending + [m for m in rerun.matches if m["notification_id"] not in fresh]
    metrics.add_metric(name="ReevaluatedEvents", unit=MetricUnit.Count, value=rerun.events)
    if rerun.more:
        metrics.add_metric(name="ReevaluationsUnfinished", unit=MetricUnit.Count, value=1)
    decisions = {"retry": len(pending), **rerun.decisions}
    summary = rerun.summary()
    logger.info("re-evaluated", extra={"reevaluation": summary, "decisions": decisions})
    if rerun.more:
        logger.warning("re-evaluation bounded: the rest of the buffer continues at the next re-evaluation", extra=summary)
    output = {
        "mode": "reevaluate",
        "tenant_id": tenant,
        # unique per run: a schedule delivered twice must not overwrite the other run's claim-checked matches
        "batch_id": f"reevaluate-{_run_name(event)}-{context.aws_request_id}",
        "events": rerun.events,
        "decisions": decisions,
        "reevaluation": summary,
    }
    return output, matches


def _run_name(event: dict[str, Any]) -> str:
    """The run's name in batch ids (and so in claim-check keys): the schedule's tick, digits only."""
    digits = "".join(ch for ch in str(event.get("scheduled_time") or "") if ch.isdigit())[:14]
    return digits or "manual"


@metrics.log_metrics
@logger.inject_lambda_context
@surfaced
# Inside surfaced: a trace shows the error's own type. No response: the output carries the matches (event content).
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenant = tenant_of(event)
    mode = event.get("mode", "events")
    annotate(tenant_id=tenant, batch_id=event.get("batch_id"))
    logger.append_keys(tenant_id=tenant, mode=mode)
    logger.append_keys(correlation_id=event.get("batch_id"))  # the batch id: one id across every stage's logs
    if mode == "reevaluate":
        output, matches = _reevaluate_mode(tenant, event, context)
    elif mode == "events":
        output, matches = _events_mode(tenant, event)
    else:
        raise ValueError(f"unknown mode {mode!r:.40}; expected 'events' or 'reevaluate'")
    output["match_count"] = len(matches)
    output["trigger_payload_exists"] = bool(matches)  # FoundMatchingRules chooses on it
    annotate(mode=mode, events=output["events"], match_count=len(matches))
    output["matches"] = matches
    return _fit(output, tenant)
