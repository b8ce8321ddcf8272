"""Rule tests: every rule carries sample events and the verdict its pattern must give them.

Tests check the pattern only; thresholds and suppression are stateful and are exercised on the
embedded AWS instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.rules.matcher import Matcher
from handlers.rules.model import Rule


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    rule_id: str
    name: str
    expected: str
    actual: str

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def run(rules: list[Rule]) -> list[TestResult]:
    results = []
    for rule in rules:
        if not rule.tests:
            continue
        matcher = Matcher([rule.rule_id], [rule.pattern.branches])  # disabled rules are tested too
        for test in rule.tests:
            actual = "match" if matcher.match(test.event) else "no_match"
            results.append(TestResult(rule.rule_id, test.name, test.expect, actual))
    return results
