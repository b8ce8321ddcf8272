"""Stage 2, pure core: one tenant's batch of events x the tenant's rules -> the matches to notify.

Every event is matched (the compiled ``Matcher``); every match is then decided by the stateful
layer (thresholds, suppression, shadow mode: ``handlers.rules.state``), which is passed in, so this
module does no I/O. A match decided ``notify`` becomes a match record: what TriggerNotifications
needs to deliver it, and nothing more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from handlers.notify import event_summary, notification_id
from handlers.rules.model import Rule
from handlers.rules.ruleset import RuleSet

Decision = Literal["notify", "shadow", "below_threshold", "suppressed", "no_key"]
Decide = Callable[[Rule, dict[str, Any]], Decision]


@dataclass
class Evaluation:
    matches: list[dict[str, Any]] = field(default_factory=list)  # match records, for TriggerNotifications
    decisions: Counter[str] = field(default_factory=Counter)  # how many matches got each decision
    foreign: list[str] = field(default_factory=list)  # uids of events of another tenant, never evaluated


def evaluate(tenant: str, events: list[dict[str, Any]], ruleset: RuleSet, decide: Decide) -> Evaluation:
    result = Evaluation()
    for event in events:
        if (event.get("metadata") or {}).get("tenant_uid") != tenant:
            # Never evaluate another tenant's event with this tenant's rules.
            result.decisions["foreign_tenant"] += 1
            result.foreign.append(str(event.get("uid")))
            continue
        for rule_id in ruleset.matcher.match(event):
            rule = ruleset.rules[rule_id]
            decision = decide(rule, event)
            result.decisions[decision] += 1
            if decision == "notify":
                result.matches.append(match_record(tenant, rule, event))
    return result


def match_record(tenant: str, rule: Rule, event: dict[str, Any]) -> dict[str, Any]:
    """What CheckEventsForRuleMatch hands to TriggerNotifications for one match."""
    user = event.get("user") or {}
    return {
        "notification_id": notification_id(tenant, rule.rule_id, event["uid"]),
        "rule_id": rule.rule_id,
        "title": rule.display_title,
        "severity": rule.severity,
        "actions": [a.model_dump(exclude_none=True) for a in rule.actions],
        "user": {k: user[k] for k in ("email_addr", "name", "uid") if user.get(k)},
        "event": event_summary(event),
    }
