"""Rule files, rule packs and tenant rule sets.

A *pack* is a shared set of rules (``rules/packs/<name>.yaml``); a pack rule may declare
``params`` and use them in its pattern as ``{"$param": "name"}``. A *tenant file*
(``rules/tenants/<tenant>.yaml``) enables packs and tunes their rules by overriding values
(``params``, ``threshold``, ``suppress``, ``mode``, ``enabled``, ``actions``, ``severity``)
without copying them, and may add its own rules. Resolving a tenant file gives the concrete rules
that ``rules push`` stores.

Every error names the file and the place in it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from handlers.rules.model import Rule

OVERRIDABLE = {"params", "threshold", "suppress", "mode", "enabled", "actions", "severity", "title"}
# A pack is referred to by its plain name: no separators or dots, so a reference never leaves the packs directory.
PACK_NAME = re.compile(r"[A-Za-z0-9_-]+")


class RuleFileError(ValueError):
    pass


def read_document(path: Path) -> Any:
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise RuleFileError(f"{path}: rule files are .yaml, .yml or .json")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except Exception as exc:  # YAML and JSON syntax errors carry line and column
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise RuleFileError(f"{path}: not valid {kind}: {exc}") from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(error: ErrorDetails) -> str:
    where, message = _where(error["loc"]) or "rule", error["msg"].removeprefix("Value error, ")
    below, _, rest = message.partition(": ")
    if where == "match" and rest and re.fullmatch(r"[\w.$\[\]-]+", below):
        return f"match.{below}: {rest}"  # the pattern compiler names the place inside the pattern
    return f"{where}: {message}"


def validate_rule(document: Any, origin: str) -> Rule:
    try:
        return Rule.model_validate(document)
    except ValidationError as exc:
        raise RuleFileError(f"{origin}: " + "; ".join(_problem(e) for e in exc.errors()[:5])) from None


def substitute(node: Any, params: dict[str, Any], where: str) -> Any:
    """Replace every {"$param": name} in a pattern by the parameter's value."""
    if isinstance(node, dict):
        if set(node) == {"$param"}:
            name = node["$param"]
            if name not in params:
                raise RuleFileError(f"{where}: unknown parameter {name!r}; declared: {', '.join(sorted(params)) or 'none'}")
            return copy.deepcopy(params[name])
        return {k: substitute(v, params, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, params, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "match":
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def resolve_rule(raw: dict[str, Any], origin: str, override: dict[str, Any] | None = None) -> Rule:
    if not isinstance(raw, dict):
        raise RuleFileError(f"{origin}: a rule is an object")
    if override:
        unknown = set(override) - OVERRIDABLE
        if unknown:
            raise RuleFileError(f"{origin}: cannot override {', '.join(sorted(unknown))}; overridable: {', '.join(sorted(OVERRIDABLE))}")
        raw = _merge(raw, override)
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise RuleFileError(f"{origin}.params: must be an object")
    document = {k: v for k, v in raw.items() if k != "params"}
    if "match" in document:
        try:
            document["match"] = substitute(document["match"], params, f"{origin}.match")
        except RecursionError:
            raise RuleFileError(f"{origin}.match: nests too deeply, or holds itself (a YAML alias inside its own anchor)") from None
    return validate_rule(document, origin)


def load_pack(path: Path) -> dict[str, dict[str, Any]]:
    """A pack's raw rules by id (params unresolved)."""
    doc = read_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleFileError(f"{path}: a pack has a 'rules' list")
    rules: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(doc["rules"]):
        if not isinstance(raw, dict) or "rule_id" not in raw:
            raise RuleFileError(f"{path}: rules[{i}]: every rule needs a rule_id")
        if raw["rule_id"] in rules:
            raise RuleFileError(f"{path}: rules[{i}]: duplicate rule_id {raw['rule_id']!r}")
        resolve_rule(raw, f"{path}: rules[{i}] ({raw['rule_id']})")  # validate with default params
        rules[raw["rule_id"]] = raw
    return rules


def packs_dir(tenant_file: Path) -> Path:
    return tenant_file.resolve().parent.parent / "packs"


def _pack_file(packs: Path, name: str, where: str) -> Path:
    """The file of the pack a tenant file names; never a path outside ``packs``."""
    if not PACK_NAME.fullmatch(name):
        raise RuleFileError(f"{where}: a pack is referred to by its plain name ([A-Za-z0-9_-]+), got {name!r:.80}")
    pack_file = next((p for p in (packs / f"{name}.yaml", packs / f"{name}.json") if p.exists()), None)
    if pack_file is None:
        raise RuleFileError(f"{where}: no pack named {name!r} in {packs}")
    # A plain name can still lead out through a symbolic link: where the file really is decides.
    if not pack_file.resolve().is_relative_to(packs.resolve()):
        raise RuleFileError(f"{where}: pack {name!r} resolves outside {packs}")
    return pack_file


def resolve_tenant(path: Path, packs: Path | None = None) -> tuple[str, list[Rule]]:
    """(tenant id, its concrete rules) from a tenant file."""
    doc = read_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("tenant"), str):
        raise RuleFileError(f"{path}: a tenant file names its 'tenant'")
    packs = packs or packs_dir(path)
    rules: dict[str, Rule] = {}
    for i, use in enumerate(doc.get("packs") or []):
        where = f"{path}: packs[{i}]"
        if not isinstance(use, dict) or not isinstance(use.get("pack"), str):
            raise RuleFileError(f"{where}: expected {{pack: name, enable: all | [rule ids], overrides: {{...}}}}")
        pack = load_pack(_pack_file(packs, use["pack"], f"{where}.pack"))
        enable = use.get("enable", "all")
        chosen = list(pack) if enable == "all" else enable
        if not isinstance(chosen, list):
            raise RuleFileError(f"{where}.enable: 'all' or a list of rule ids")
        overrides = use.get("overrides") or {}
        for rule_id in [*chosen, *overrides]:
            if rule_id not in pack:
                raise RuleFileError(f"{where}: pack {use['pack']!r} has no rule {rule_id!r}")
        for rule_id in chosen:
            rule = resolve_rule(pack[rule_id], f"{where} ({rule_id})", overrides.get(rule_id))
            rules[rule.rule_id] = rule
    for i, raw in enumerate(doc.get("rules") or []):
        rule = resolve_rule(raw, f"{path}: rules[{i}]")
        if rule.rule_id in rules:
            raise RuleFileError(f"{path}: rules[{i}]: rule_id {rule.rule_id!r} is already used by an enabled pack rule")
        rules[rule.rule_id] = rule
    return doc["tenant"], list(rules.values())


def load_rules(target: Path) -> list[tuple[str, list[Rule]]]:
    """Everything under a file or directory, as (origin, rules): packs, tenant files, rule lists."""
    files = sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if target.is_dir() else [target]
    if not files:
        raise RuleFileError(f"{target}: no rule files (.yaml, .yml, .json)")
    found = []
    for path in files:
        doc = read_document(path)
        if isinstance(doc, dict) and "tenant" in doc:
            tenant, rules = resolve_tenant(path)
            found.append((f"{path} (tenant {tenant})", rules))
        elif isinstance(doc, dict) and "rules" in doc:
            found.append((str(path), [resolve_rule(raw, f"{path}: rules[{i}]") for i, raw in enumerate(load_pack(path).values())]))
        elif isinstance(doc, list):
            found.append((str(path), [resolve_rule(raw, f"{path}: [{i}]") for i, raw in enumerate(doc)]))
        elif isinstance(doc, dict) and "rule_id" in doc:
            found.append((str(path), [resolve_rule(doc, str(path))]))
        else:
            raise RuleFileError(f"{path}: expected a pack (rules: [...]), a tenant file (tenant: ...), a list of rules or one rule")
    return found
