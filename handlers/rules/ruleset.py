"""A tenant's rule set as CheckEventsForRuleMatch uses it: the active rules by id, compiled once
into one matcher, under the version that identifies this exact set of rules."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from handlers.rules.matcher import Matcher, compile_rules
from handlers.rules.model import Rule


@dataclass(frozen=True)
class RuleSet:
    tenant: str
    version: str
    rules: dict[str, Rule]  # the active (enabled) rules by id
    matcher: Matcher


def ruleset_version(rules: Iterable[Rule]) -> str:
    """The same rules always give the same version; any change to one gives another (tests aside:
    they do not change what a rule does)."""
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.rule_id):
        digest.update(rule.model_dump_json(exclude={"tests"}).encode("utf-8"))
    return digest.hexdigest()[:16]


def build(tenant: str, version: str, rules: Iterable[Rule]) -> RuleSet:
    active = [r for r in rules if r.enabled]
    return RuleSet(tenant, version, {r.rule_id: r for r in active}, compile_rules(active))
