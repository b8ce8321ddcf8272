"""Stage 2, pure core: one tenant's batch of events x the tenant's rules -> the matches to notify.

Every event is matched (the compiled ``Matcher``); every match is then decided by the stateful
layer (thresholds, suppression, shadow mode: ``handlers.rules.state``), and a match its rule decides
to notify by the tenant's coaching policy (frequency cap, escalation ladder:
``handlers.coaching_state``), both passed in, so this module does no I/O. A match decided
``notify`` becomes a match record: what TriggerNotifications needs to deliver it, and nothing more.
With a coaching policy, events are evaluated in event-time order (stable: ties keep the batch's
order), so one person's matches in a batch climb the ladder in the order they happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.coaching import Verdict, ladder_actions
from handlers.notify import event_summary, notification_id
from handlers.rules.model import Rule
from handlers.rules.ruleset import RuleSet

Decision = Literal["notify", "shadow", "below_threshold", "suppressed", "no_key"]
Decide = Callable[[Rule, dict[str, Any]], Decision]
Coach = Callable[[Rule, dict[str, Any]], Verdict]  # a match its rule decided to notify -> notify or capped


@dataclass
class Evaluation:
    matches: list[dict[str, Any]] = field(default_factory=list)  # match records, for TriggerNotifications
    decisions: Counter[str] = field(default_factory=Counter)  # how many matches got each decision
    foreign: list[str] = field(default_factory=list)  # uids of events of another tenant, never evaluated


def evaluate(
    tenant: str, events: list[dict[str, Any]], ruleset: RuleSet, decide: Decide, coach: Coach | None = None, escalate_to: str | None = None
) -> Evaluation:
    result = Evaluation()
    if coach is not None:
        events = sorted(events, key=_event_time)
    for event in events:
        if (event.get("metadata") or {}).get("tenant_uid") != tenant:
            # Never evaluate another tenant's event with this tenant's rules.
            result.decisions["foreign_tenant"] += 1
            result.foreign.append(str(event.get("uid")))
            continue
        for rule_id in ruleset.matcher.match(event):
            rule = ruleset.rules[rule_id]
            decision: str = decide(rule, event)
            verdict = None
            if decision == "notify" and coach is not None:
                verdict = coach(rule, event)
                decision = verdict.decision
            result.decisions[decision] += 1
            if decision == "notify":
                result.matches.append(match_record(tenant, rule, event, verdict, escalate_to))
    return result


def _event_time(event: dict[str, Any]) -> int:
    time = event.get("time")
    return time if isinstance(time, int) and not isinstance(time, bool) else 0


def match_record(
    tenant: str, rule: Rule, event: dict[str, Any], verdict: Verdict | None = None, escalate_to: str | None = None
) -> dict[str, Any]:
    """What CheckEventsForRuleMatch hands to TriggerNotifications for one match; with an escalation
    ladder, its level and repeat count (``escalation``) and the actions of that level."""
    user = event.get("user") or {}
    actions = [a.model_dump(exclude_none=True) for a in rule.actions]
    escalation = verdict.escalation if verdict is not None else None
    if verdict is not None and escalation is not None:
        actions = ladder_actions(actions, verdict.level, escalate_to)
    record: dict[str, Any] = {
        "notification_id": notification_id(tenant, rule.rule_id, event["uid"]),
        "rule_id": rule.rule_id,
        "title": rule.display_title,
        "severity": rule.severity,
        "actions": actions,
        "user": {k: user[k] for k in ("email_addr", "name", "uid") if user.get(k)},
        "event": event_summary(event),
    }
    if escalation is not None:
        record["escalation"] = escalation
    return record
