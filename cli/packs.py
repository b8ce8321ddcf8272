"""Rule files, rule packs and tenant rule sets.

A *pack* is a shared set of rules (``rules/packs/<name>.yaml``); a pack rule may declare
``params`` and use them in its pattern as ``{"$param": "name"}``. A *tenant file*
(``rules/tenants/<tenant>.yaml``) enables packs and tunes their rules by overriding values
(``params``, ``threshold``, ``suppress``, ``mode``, ``enabled``, ``actions``, ``severity``)
without copying them, and may add its own rules. Resolving a tenant file gives the concrete rules
that ``rules push`` stores.

Every error names the file (and for YAML the line), the rule and the place in it. A file's rules
together (a tenant's: its own and its packs') must also be within the complexity budget
(``handlers.rules.ruleset.over_budget``), so that whatever is accepted compiles within a second.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from cli.checks import Problem, rule_problems
from cli.schema import model_at
from handlers.rules.model import Rule
from handlers.rules.ruleset import over_budget

OVERRIDABLE = {"params", "threshold", "suppress", "mode", "enabled", "actions", "severity", "title"}
# A pack is referred to by its plain name: no separators or dots, so a reference never leaves the packs directory.
PACK_NAME = re.compile(r"[A-Za-z0-9_-]+")


class RuleFileError(ValueError):
    pass


class Located(dict[Any, Any]):
    """A YAML mapping that remembers where it was written, for errors: its line and each key's (1-based)."""

    line: int
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    pass


def _located_mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[Located]:
    data = Located()
    data.line, data.key_lines = node.start_mark.line + 1, {}
    yield data  # first, empty: as SafeLoader's own mappings, so that an alias inside its anchor resolves
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # constructed already: this is the cached key
        if isinstance(key, (str, int, float, bool)) or key is None:
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)


_Loader.add_constructor("tag:yaml.org,2002:map", _located_mapping)


def read_document(path: Path) -> Any:
    """A rule file's content; a YAML file's mappings are ``Located``, knowing their lines."""
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise RuleFileError(f"{path}: rule files are .yaml, .yml or .json")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader that records lines
    except Exception as exc:  # YAML and JSON syntax errors carry line and column
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise RuleFileError(f"{path}: not valid {kind}: {exc}") from None


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def at(path: Path, node: Any) -> str:
    """``path:line`` of a YAML node that knows its line, else ``path``."""
    return f"{path}:{node.line}" if isinstance(node, Located) else str(path)


def _line(source: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest key of ``loc`` that ``source`` (a rule as read) recorded."""
    line, node = None, source
    for part in loc:
        if isinstance(node, Located) and part in node.key_lines:
            line = node.key_lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def _line_note(source: Any, loc: tuple[Any, ...]) -> str:
    """The note " (line N)" when the place has a line of its own, other than the rule's."""
    line = _line(source, loc)
    return f" (line {line})" if line is not None and line != getattr(source, "line", None) else ""


def _unknown_key(loc: tuple[Any, ...], source: Any) -> str:
    """pydantic's "Extra inputs are not permitted", as a sentence naming the key and the allowed ones."""
    model = model_at(Rule, loc[:-1])
    allowed = [*model.model_fields, *(["params"] if not loc[:-1] else [])] if model else []
    near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    return f"unknown key {loc[-1]!r}{_line_note(source, loc)}; allowed: {', '.join(allowed)}" + (
        f"; did you mean {near[0]!r}?" if near else ""
    )


def _problem(error: ErrorDetails, source: Any) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        return (f"{_where(loc[:-1])}: " if loc[:-1] else "") + _unknown_key(loc, source)
    message = error["msg"].removeprefix("Value error, ")
    below, _, rest = message.partition(": ")
    if loc == ("match",) and rest and re.fullmatch(r"[\w.$\[\]-]+", below):
        # The pattern compiler names the place inside the pattern; its line is that of the deepest key named.
        return f"match.{below}{_line_note(source, ('match', *below.split('.')))}: {rest}"
    return f"{_where(loc) or 'rule'}{_line_note(source, loc)}: {message}"


def _joined(problems: list[str], shown: int = 5) -> str:
    return "; ".join(problems[:shown]) + (f"; and {len(problems) - shown} more" if len(problems) > shown else "")


def raw_file(base: Path, name: str) -> Path:
    """The payload file of a ``raw`` rule test: named relative to the directory of the rule's file,
    and inside that directory (a rule file cannot make the tests read anything else)."""
    path = (base / name).resolve()
    if Path(name).is_absolute() or not path.is_relative_to(base.resolve()):
        raise ValueError(f"{name!r} is outside {base}: a raw file is named relative to the rule file, in its directory or below")
    if not path.is_file():
        raise ValueError(f"no such file: {base / name}")
    return path


def _raw_problems(rule: Rule, base: Path) -> list[Problem]:
    problems = []
    for i, test in enumerate(rule.tests):
        if test.raw is not None:
            try:
                raw_file(base, test.raw)
            except ValueError as exc:
                problems.append(Problem(("tests", i, "raw"), str(exc)))
    return problems


def validate_rule(document: Any, origin: str, source: Any = None, base: Path | None = None) -> Rule:
    """The rule, checked as a document (pydantic) and then against the pipeline (cli/checks.py).
    ``source``: the rule as read from its file, for line numbers (default: ``document``); ``base``:
    the directory of that file, where the payloads of its ``raw`` tests are."""
    source = document if source is None else source
    try:
        rule = Rule.model_validate(document)
    except ValidationError as exc:
        raise RuleFileError(f"{origin}: " + _joined([_problem(e, source) for e in exc.errors()])) from None
    problems = rule_problems(rule) + (_raw_problems(rule, base) if base is not None else [])
    if problems:
        raise RuleFileError(f"{origin}: " + _joined([f"{_where(p.place)}{_line_note(source, p.place)}: {p.message}" for p in problems]))
    return rule


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


def resolve_rule(raw: dict[str, Any], origin: str, override: dict[str, Any] | None = None, base: Path | None = None) -> Rule:
    """A rule of a file (its params substituted, a tenant's override merged), validated; errors name
    ``origin``, the rule id and the place (with its line, for YAML). ``base``: the directory of the
    file that defines the rule, to check its ``raw`` tests' files."""
    if not isinstance(raw, dict):
        raise RuleFileError(f"{origin}: a rule is an object")
    if isinstance(raw.get("rule_id"), str):
        origin = f"{origin}: rule {raw['rule_id']}"
    source = override or raw  # where the lines are: an override's places are in the tenant file
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
    return validate_rule(document, origin, source, base)


def load_pack(path: Path) -> dict[str, dict[str, Any]]:
    """A pack's raw rules by id (params unresolved)."""
    doc = read_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleFileError(f"{path}: a pack has a 'rules' list")
    rules: dict[str, dict[str, Any]] = {}
    for i, raw in enumerate(doc["rules"]):
        if not isinstance(raw, dict) or "rule_id" not in raw:
            raise RuleFileError(f"{at(path, raw)}: rules[{i}]: every rule needs a rule_id")
        if raw["rule_id"] in rules:
            raise RuleFileError(f"{at(path, raw)}: rules[{i}]: duplicate rule_id {raw['rule_id']!r}")
        resolve_rule(raw, f"{at(path, raw)}: rules[{i}]", base=path.parent)  # validate with default params
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


@dataclass(frozen=True)
class RuleFile:
    origin: str
    rules: list[Rule]
    bases: dict[str, Path]  # rule id -> the directory of the file defining it, where its raw test files are


def _tenant(path: Path, packs: Path | None = None) -> tuple[str, RuleFile]:
    doc = read_document(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("tenant"), str):
        raise RuleFileError(f"{path}: a tenant file names its 'tenant'")
    packs = packs or packs_dir(path)
    rules: dict[str, Rule] = {}
    bases: dict[str, Path] = {}
    for i, use in enumerate(doc.get("packs") or []):
        where = f"{path}: packs[{i}]"
        if not isinstance(use, dict) or not isinstance(use.get("pack"), str):
            raise RuleFileError(f"{where}: expected {{pack: name, enable: all | [rule ids], overrides: {{...}}}}")
        pack_file = _pack_file(packs, use["pack"], f"{where}.pack")
        pack = load_pack(pack_file)
        enable = use.get("enable", "all")
        chosen = list(pack) if enable == "all" else enable
        if not isinstance(chosen, list):
            raise RuleFileError(f"{where}.enable: 'all' or a list of rule ids")
        overrides = use.get("overrides") or {}
        for rule_id in [*chosen, *overrides]:
            if rule_id not in pack:
                raise RuleFileError(f"{where}: pack {use['pack']!r} has no rule {rule_id!r}")
        for rule_id in chosen:
            override = overrides.get(rule_id)
            rule = resolve_rule(pack[rule_id], f"{at(path, override) if override else path}: packs[{i}]", override, pack_file.parent)
            rules[rule.rule_id], bases[rule.rule_id] = rule, pack_file.parent
    for i, raw in enumerate(doc.get("rules") or []):
        rule = resolve_rule(raw, f"{at(path, raw)}: rules[{i}]", base=path.parent)
        if rule.rule_id in rules:
            raise RuleFileError(f"{at(path, raw)}: rules[{i}]: rule_id {rule.rule_id!r} is already used by an enabled pack rule")
        rules[rule.rule_id], bases[rule.rule_id] = rule, path.parent
    origin = f"{path} (tenant {doc['tenant']})"
    return doc["tenant"], RuleFile(origin, _within_budget(origin, list(rules.values())), bases)


def _within_budget(origin: str, rules: list[Rule]) -> list[Rule]:
    problem = over_budget(rules)
    if problem is not None:
        raise RuleFileError(f"{origin}: {problem}")
    return rules


def resolve_tenant(path: Path, packs: Path | None = None) -> tuple[str, list[Rule]]:
    """(tenant id, its concrete rules) from a tenant file."""
    tenant, found = _tenant(path, packs)
    return tenant, found.rules


def _rule_dicts(doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        return list(doc["rules"]) if isinstance(doc.get("rules"), list) else [doc] if "rule_id" in doc else []
    return []


def _raw_references(files: list[Path]) -> set[Path]:
    """The payload files that rules among ``files`` name in ``raw`` tests: samples, not rule files."""
    named = set()
    for path in files:
        try:
            doc = read_document(path)
        except RuleFileError:
            continue  # reported when it is read as a rule file, if it is one
        for rule in _rule_dicts(doc):
            tests = rule.get("tests") if isinstance(rule, dict) else None
            for test in tests if isinstance(tests, list) else []:
                if isinstance(test, dict) and isinstance(test.get("raw"), str):
                    named.add((path.parent / test["raw"]).resolve())
    return named


def load_rule_files(target: Path) -> list[RuleFile]:
    """Everything under a file or directory: packs, tenant files, rule lists, one rule per file.
    Files that rules name as ``raw`` test payloads are samples, not rule files."""
    files = sorted(p for p in target.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if target.is_dir() else [target]
    if target.is_dir():
        samples = _raw_references(files)
        files = [p for p in files if p.resolve() not in samples]
    if not files:
        raise RuleFileError(f"{target}: no rule files (.yaml, .yml, .json)")
    found = []
    for path in files:
        doc = read_document(path)
        if isinstance(doc, dict) and "tenant" in doc:
            found.append(_tenant(path)[1])
            continue
        if isinstance(doc, dict) and "rules" in doc:
            rules = [resolve_rule(raw, f"{at(path, raw)}: rules[{i}]", base=path.parent) for i, raw in enumerate(load_pack(path).values())]
        elif isinstance(doc, list):
            rules = [resolve_rule(raw, f"{at(path, raw)}: [{i}]", base=path.parent) for i, raw in enumerate(doc)]
        elif isinstance(doc, dict) and "rule_id" in doc:
            rules = [resolve_rule(doc, at(path, doc), base=path.parent)]
        else:
            raise RuleFileError(f"{path}: expected a pack (rules: [...]), a tenant file (tenant: ...), a list of rules or one rule")
        found.append(RuleFile(str(path), _within_budget(str(path), rules), {rule.rule_id: path.parent for rule in rules}))
    return found


def load_rules(target: Path) -> list[tuple[str, list[Rule]]]:
    """Everything under a file or directory, as (origin, rules)."""
    return [(found.origin, found.rules) for found in load_rule_files(target)]
