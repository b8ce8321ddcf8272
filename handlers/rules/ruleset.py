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


def rule_fingerprint(rule: Rule) -> str:
    """What one rule does, as a short hash (its tests aside): equal fingerprints, equal decisions.
    Re-evaluation re-runs over buffered events only the rules whose fingerprint changed since the
    events were evaluated (``handlers.reevaluation``)."""
    return hashlib.sha256(rule.model_dump_json(exclude={"tests"}).encode("utf-8")).hexdigest()[:16]


def fingerprints(ruleset: RuleSet) -> dict[str, str]:
    """Each active rule's fingerprint, by rule id."""
    return {rule_id: rule_fingerprint(rule) for rule_id, rule in sorted(ruleset.rules.items())}


def changed_rules(ruleset: RuleSet, evaluated_with: dict[str, str]) -> list[Rule]:
    """The active rules of ``ruleset`` that events evaluated with the rules ``evaluated_with``
    (fingerprints by rule id) were not evaluated with: new, re-enabled or modified ones."""
    return [rule for rule_id, rule in sorted(ruleset.rules.items()) if evaluated_with.get(rule_id) != rule_fingerprint(rule)]


def build(tenant: str, version: str, rules: Iterable[Rule]) -> RuleSet:
    active = [r for r in rules if r.enabled]
    return RuleSet(tenant, version, {r.rule_id: r for r in active}, compile_rules(active))
