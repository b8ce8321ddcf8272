"""Tenant rules in DynamoDB (the rules table): partition ``tenant_id``, one item per rule (sort key
``rule_id``, attribute ``document``: the rule as JSON), beside the tenant's settings item
(``handlers.tenant_settings``), which holds the rule-set version.

``push`` writes the rules first and the version last; ``load`` keeps the compiled rule set per
tenant and reloads it only when the version changes, so a warm Lambda compiles a tenant's rules
once per push. One function serves every tenant, so what it keeps is bounded (``CACHE_UNITS``):
the tenants used least recently are dropped first, and compiled again when they come back.

``push`` refuses a rule set over the complexity budget (``ruleset.over_budget``); ``load`` never
does: a set stored before the budget existed (or under a larger one) is compiled as before, with a
warning.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from handlers import tenant_settings
from handlers.dynamo import Table, pages
from handlers.rules.model import STORED, Rule
from handlers.rules.ruleset import COMPLEXITY_BUDGET, RuleSet, build, complexity, over_budget, ruleset_version

logger = logging.getLogger(__name__)


class OverBudget(ValueError):
    """A rule set over the complexity budget; the message names the measure, the budget and the
    biggest rules."""


# The compiled rule sets a warm function keeps, in complexity units (``ruleset.complexity``): what
# compiling them cost, and a bound on their memory (at most 2 KB per unit compiled, bitsets
# included, on the costliest shapes: tests/test_compile_time.py), so three sets at the budget,
# 150 MB at worst, 20 MB of plain rules. Without a bound a warm container would keep every tenant it
# ever evaluated until it ran out of memory, failing every tenant's evaluations.
CACHE_UNITS = 3 * COMPLEXITY_BUDGET


class RuleStore:
    def __init__(self, table: Table, cache_units: int = CACHE_UNITS) -> None:
        self.table = table
        self.cache_units = cache_units
        # tenant -> (its compiled rules, their complexity); least recently used first
        self._cache: OrderedDict[str, tuple[RuleSet, int]] = OrderedDict()

    def _rule_items(self, tenant: str, **query: Any) -> list[dict[str, Any]]:
        return [
            item
            for page in pages(
                self.table,
                KeyConditionExpression="tenant_id = :t",
                ExpressionAttributeValues={":t": tenant},
                **query,
            )
            for item in page["Items"]
            if item["rule_id"] != tenant_settings.SORT_KEY
        ]

    def cached_version(self, tenant: str) -> str | None:
        """The version of the tenant's rules this store holds compiled, if any."""
        cached = self._cache.get(tenant)
        return cached[0].version if cached is not None else None

    def load(self, tenant: str, settings: tenant_settings.TenantSettings | None = None) -> RuleSet:
        """The tenant's compiled rules; a warm Lambda reuses them until the version changes (that
        of ``settings`` when the caller read them already)."""
        version = (settings or tenant_settings.read(self.table, tenant)).ruleset_version
        cached = self._cache.get(tenant)
        if cached is not None and cached[0].version == version:
            self._cache.move_to_end(tenant)
            return cached[0]
        rules = [Rule.model_validate_json(item["document"], context=STORED) for item in self._rule_items(tenant, ConsistentRead=True)]
        problem = over_budget(rules)
        if problem is not None:
            logger.warning("tenant %s: %s; compiled all the same (stored before the budget, or not by rules push)", tenant, problem)
        ruleset = build(tenant, version, rules)
        self._keep(tenant, ruleset, sum(complexity(r) for r in rules))
        return ruleset

    def _keep(self, tenant: str, ruleset: RuleSet, units: int) -> None:
        """Cache the tenant's rules, dropping the least recently used others while over the bound
        (the tenant being evaluated stays, however big)."""
        self._cache.pop(tenant, None)
        self._cache[tenant] = (ruleset, units)
        held = sum(u for _, u in self._cache.values())
        while held > self.cache_units and len(self._cache) > 1:
            dropped, (_, freed) = self._cache.popitem(last=False)
            held -= freed
            logger.info("compiled rules of tenant %s dropped from the cache (%d units held, bound %d)", dropped, held, self.cache_units)

    def push(self, tenant: str, rules: list[Rule], webhook_url: str | None = None) -> dict[str, Any]:
        """Replace a tenant's rules (validated already) and bump its version last. Raises OverBudget,
        writing nothing, when the rules together are over the complexity budget."""
        problem = over_budget(rules)
        if problem is not None:
            raise OverBudget(f"tenant {tenant}: {problem}")
        existing = {item["rule_id"] for item in self._rule_items(tenant, ProjectionExpression="rule_id")}
        wanted = {r.rule_id for r in rules}
        with self.table.batch_writer() as batch:
            for rule in rules:
                batch.put_item(Item={"tenant_id": tenant, "rule_id": rule.rule_id, "document": rule.model_dump_json(exclude_none=True)})
            for stale in existing - wanted:
                batch.delete_item(Key={"tenant_id": tenant, "rule_id": stale})
        version = ruleset_version(rules)
        tenant_settings.write(self.table, tenant, version, len(rules), webhook_url)
        return {"tenant": tenant, "version": version, "rules": len(rules), "removed": sorted(existing - wanted)}
