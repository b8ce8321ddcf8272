"""A tenant's rule set as CheckEventsForRuleMatch uses it: the active rules by id, compiled once
into one matcher, under the version that identifies this exact set of rules.

The complexity budget bounds what loading and compiling a tenant's rules costs: ``rules validate``
and ``rules push`` refuse a rule set over ``COMPLEXITY_BUDGET``, so that every accepted set loads
and compiles within a second (measured on the worst shapes: ``tests/test_compile_time.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from handlers.rules.matcher import Matcher, compile_rules
from handlers.rules.model import Rule

# Units of the complexity measure (``complexity``). The costliest shapes per unit (wildcards of
# eight stars, IPv6 CIDR blocks, four-value clauses that nest, numeric ranges) load and compile at
# 14-30 µs a unit on a shared 2-core machine (small rules 6-12 µs), so the budget's worst case takes
# 0.35-0.75 s there (tests/test_compile_time.py); 40,000 units came too close to a second under load.
COMPLEXITY_BUDGET = 25_000
RULE_UNITS = 4  # reading and validating a rule document, whatever its pattern


def complexity(rule: Rule) -> int:
    """What loading and compiling the rule costs, in units: ``RULE_UNITS``, plus one per value its
    pattern holds (each value of an ``anything-but`` list too), plus one per value of each
    alternative the pattern expands to (``$or``: a value shared by n alternatives counts n times)."""
    pattern = rule.pattern
    return RULE_UNITS + pattern.values + sum(len(clause.alternatives) for branch in pattern.branches for clause in branch)


def over_budget(rules: Iterable[Rule], budget: int = COMPLEXITY_BUDGET, shown: int = 5) -> str | None:
    """None when the rules are within the budget; else what to tell whoever wrote them: the measure,
    the budget and the rules that weigh most. Disabled rules count: they are loaded all the same."""
    weights = sorted(((complexity(rule), rule.rule_id) for rule in rules), key=lambda wr: (-wr[0], wr[1]))
    total = sum(weight for weight, _ in weights)
    if total <= budget:
        return None
    biggest = ", ".join(f"{rule_id} {weight:,}" for weight, rule_id in weights[:shown])
    return (
        f"rule set complexity {total:,} is over the budget of {budget:,} for one tenant "
        f"({RULE_UNITS} per rule, plus 1 per value of its pattern, plus 1 per value of each $or alternative; "
        f"the budget keeps compiling within a second); biggest: {biggest}"
    )


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
