"""Compiling rules into a ``Matcher``."""

from __future__ import annotations

from typing import Any, Iterable

from handlers.rules.matcher.match import Matcher
from handlers.rules.matcher.parse import PatternError, parse_pattern


def compile_rules(rules: Iterable[dict[str, Any]]) -> Matcher:
    """Compile rule dicts (only ``rule_id`` and ``match`` are required) into a matcher whose
    ``.match(event)`` returns the ids of the rules whose ``match`` pattern matches the event.

    Raises PatternError naming the rule and the offending place of its pattern.
    Disabled rules (``"enabled": false``) are left out.
    """
    ids: list[str] = []
    compiled = []
    for n, rule in enumerate(rules):
        if not isinstance(rule, dict) or "rule_id" not in rule or "match" not in rule:
            raise PatternError(f"rules[{n}]", "a rule needs 'rule_id' and 'match'")
        if rule.get("enabled", True) is False:
            continue
        rule_id = str(rule["rule_id"])
        compiled.append(parse_pattern(rule["match"], where=f"{rule_id}.match"))
        ids.append(rule_id)
    return Matcher(ids, compiled)
