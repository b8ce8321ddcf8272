"""Compiling rules into a ``Matcher``: ``compile_rules`` for validated rules, whose patterns were
parsed once when they were validated; ``compile_patterns`` for raw patterns (tests, benchmarks,
comparisons with other matchers)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol, Sequence

from handlers.rules.matcher.match import Matcher
from handlers.rules.matcher.parse import Clause, Pattern, parse_pattern


class CompilableRule(Protocol):
    """What compiling needs of a rule; ``handlers.rules.model.Rule`` has it."""

    @property
    def rule_id(self) -> str: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def pattern(self) -> Pattern: ...


def compile_rules(rules: Iterable[CompilableRule]) -> Matcher:
    """A matcher whose ``.match(event)`` returns the ids of the rules whose pattern matches the
    event, in the order of ``rules``. Disabled rules are left out. Builds the index only: the
    patterns were validated and parsed with the rules."""
    active = [rule for rule in rules if rule.enabled]
    return Matcher([rule.rule_id for rule in active], [rule.pattern.branches for rule in active])


def compile_patterns(patterns: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Matcher:
    """A matcher of raw patterns by rule id (a mapping or ``(rule_id, pattern)`` pairs).

    Raises PatternError naming the rule and the offending place, e.g. ``r1.match.user.name[0]``."""
    pairs = patterns.items() if isinstance(patterns, Mapping) else patterns
    ids: list[str] = []
    parsed: list[Sequence[Sequence[Clause]]] = []
    for rule_id, pattern in pairs:
        parsed.append(parse_pattern(pattern, where=f"{rule_id}.match").branches)
        ids.append(rule_id)
    return Matcher(ids, parsed)
