"""Tenant rules and settings in DynamoDB (the rules table).

Layout: partition ``tenant_id``; one item per rule (sort key ``rule_id``, attribute ``document``:
the rule as JSON) and one settings item (sort key ``#tenant``) holding the webhook URL and the
rule-set version. ``push`` writes the rules first and the version last; readers cache the compiled
rules per tenant and reload only when the version changes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from handlers.dynamo import pages
from handlers.rules.matcher import Matcher, compile_rules
from handlers.rules.model import Rule

SETTINGS = "#tenant"


@dataclass(frozen=True)
class RuleSet:
    tenant: str
    version: str
    rules: dict[str, Rule]
    matcher: Matcher


def ruleset_version(rules: list[Rule]) -> str:
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.rule_id):
        digest.update(rule.model_dump_json(exclude={"tests"}).encode("utf-8"))
    return digest.hexdigest()[:16]


def build(tenant: str, version: str, rules: list[Rule]) -> RuleSet:
    active = [r for r in rules if r.enabled]
    return RuleSet(tenant, version, {r.rule_id: r for r in active}, compile_rules(active))


class RuleStore:
    def __init__(self, table: Any) -> None:
        self.table = table
        self._cache: dict[str, RuleSet] = {}

    def settings(self, tenant: str) -> dict[str, Any]:
        return self.table.get_item(Key={"tenant_id": tenant, "rule_id": SETTINGS}, ConsistentRead=True).get("Item") or {}

    def load(self, tenant: str) -> RuleSet:
        """The tenant's compiled rules; a warm Lambda reuses them until the version changes."""
        version = str(self.settings(tenant).get("ruleset_version", "none"))
        cached = self._cache.get(tenant)
        if cached is not None and cached.version == version:
            return cached
        rules = [
            Rule.model_validate_json(item["document"])
            for page in pages(self.table, KeyConditionExpression=Key("tenant_id").eq(tenant), ConsistentRead=True)
            for item in page["Items"]
            if item["rule_id"] != SETTINGS
        ]
        ruleset = build(tenant, version, rules)
        self._cache[tenant] = ruleset
        return ruleset

    def push(self, tenant: str, rules: list[Rule], webhook_url: str | None = None) -> dict[str, Any]:
        """Replace a tenant's rules (validated already) and bump its version last."""
        existing = {
            item["rule_id"]
            for page in pages(self.table, KeyConditionExpression=Key("tenant_id").eq(tenant), ProjectionExpression="rule_id")
            for item in page["Items"]
            if item["rule_id"] != SETTINGS
        }
        wanted = {r.rule_id for r in rules}
        with self.table.batch_writer() as batch:
            for rule in rules:
                batch.put_item(Item={"tenant_id": tenant, "rule_id": rule.rule_id,
                                     "document": rule.model_dump_json(exclude_none=True)})  # fmt: skip
            for stale in existing - wanted:
                batch.delete_item(Key={"tenant_id": tenant, "rule_id": stale})
        version = ruleset_version(rules)
        names = {"#v": "ruleset_version", "#u": "updated_at", "#n": "rule_count"}
        values: dict[str, Any] = {":v": version, ":u": int(time.time()), ":n": len(rules)}
        update = "SET #v = :v, #u = :u, #n = :n"
        if webhook_url is not None:
            names["#w"], values[":w"] = "webhook_url", webhook_url
            update += ", #w = :w"
        self.table.update_item(
            Key={"tenant_id": tenant, "rule_id": SETTINGS},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return {"tenant": tenant, "version": version, "rules": len(rules), "removed": sorted(existing - wanted)}
