"""Tenant rules in DynamoDB (the rules table): partition ``tenant_id``, one item per rule (sort key
``rule_id``, attribute ``document``: the rule as JSON), beside the tenant's settings item
(``handlers.tenant_settings``), which holds the rule-set version.

``push`` writes the rules first and the version last; ``load`` keeps the compiled rule set per
tenant and reloads it only when the version changes, so a warm Lambda compiles a tenant's rules
once per push.

``push`` refuses a rule set over the complexity budget (``ruleset.over_budget``); ``load`` never
does: a set stored before the budget existed (or under a larger one) is compiled as before, with a
warning.
"""

from __future__ import annotations

import logging
from typing import Any

from handlers import tenant_settings
from handlers.dynamo import Table, pages
from handlers.rules.model import STORED, Rule
from handlers.rules.ruleset import RuleSet, build, over_budget, ruleset_version

logger = logging.getLogger(__name__)


class OverBudget(ValueError):
    """A rule set over the complexity budget; the message names the measure, the budget and the
    biggest rules."""


class RuleStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self._cache: dict[str, RuleSet] = {}

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
        return cached.version if cached is not None else None

    def load(self, tenant: str, settings: tenant_settings.TenantSettings | None = None) -> RuleSet:
        """The tenant's compiled rules; a warm Lambda reuses them until the version changes (that
        of ``settings`` when the caller read them already)."""
        version = (settings or tenant_settings.read(self.table, tenant)).ruleset_version
        cached = self._cache.get(tenant)
        if cached is not None and cached.version == version:
            return cached
        rules = [Rule.model_validate_json(item["document"], context=STORED) for item in self._rule_items(tenant, ConsistentRead=True)]
        problem = over_budget(rules)
        if problem is not None:
            logger.warning("tenant %s: %s; compiled all the same (stored before the budget, or not by rules push)", tenant, problem)
        ruleset = build(tenant, version, rules)
        self._cache[tenant] = ruleset
        return ruleset

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
