"""Rule tests: every rule carries samples and the verdict its pattern must give them.

A sample is a normalized ``event``, or a ``raw`` vendor payload file normalized by the pipeline's own
pure core (``handlers.ingest.normalize_payload``), so a test can hold what the vendor really sends.
A payload giving several events matches when any of them does. A failing test says why: each clause
that decided, with the field, the value the event has (or "absent") and what the pattern expected.

Tests check the pattern only; thresholds and suppression are stateful and are exercised on the
embedded AWS instead.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.packs import raw_file
from handlers.ingest import AUTO, normalize_payload
from handlers.outcomes import NormalizedOutcome
from handlers.rules.matcher import Matcher
from handlers.rules.matcher.consistency import Plan, consistent
from handlers.rules.matcher.match import PathTree
from handlers.rules.matcher.parse import Clause
from handlers.rules.model import Rule, RuleTest

TENANT = "rules-test"  # the tenant raw payloads are normalized for


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    rule_id: str
    name: str
    expected: str
    actual: str  # match, no_match, or error (the sample could not be read)
    detail: str = ""  # why it failed

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def _source_branches(node: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[list[tuple[tuple[str, ...], Any]]]:
    """The pattern's own text of each clause, branch by branch: the same expansion of ``$or``, in the
    same order, as parse._branches, so it pairs with ``Pattern.branches`` clause for clause."""
    result: list[list[tuple[tuple[str, ...], Any]]] = [[]]
    for key, value in node.items():
        if key == "$or":
            options = [branch for sub in value for branch in _source_branches(sub, prefix)]
        elif isinstance(value, dict):
            options = _source_branches(value, prefix + (key,))
        else:
            options = [[(prefix + (key,), value)]]
        result = [left + right for left in result for right in options]
    return result


def _text(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clause(clause: Clause, expected: Any, event: dict[str, Any]) -> tuple[bool, str]:
    values = PathTree([clause.path]).collect(event)[0]
    seen = "absent" if not values else _text(values[0] if len(values) == 1 else values)
    return clause.satisfied(values), f"{'.'.join(clause.path)}: event has {seen}, pattern expects {_text(expected)}"


def explain(rule: Rule, event: dict[str, Any]) -> str:
    """Why the rule's pattern matches the event or not: the clauses that decided."""
    branches = list(zip(rule.pattern.branches, _source_branches(rule.match)))
    reasons = []
    for n, (clauses, texts) in enumerate(branches, 1):
        verdicts = [_clause(clause, expected, event) for clause, (_, expected) in zip(clauses, texts)]
        label = f"alternative {n}: " if len(branches) > 1 else ""
        # Each clause alone sees every value of its field; the branch needs its fields under an array
        # of objects within one element (array consistency), which the matcher decides.
        if consistent(event, Plan([(c.path, c) for c in clauses])):
            return f"{label}every clause matched: " + "; ".join(text for _, text in verdicts)
        if all(ok for ok, _ in verdicts):
            reasons.append(f"{label}each clause matches some value, but not within one element of the array they share: "
                           + "; ".join(text for _, text in verdicts))  # fmt: skip
            continue
        reasons.append(label + "; ".join(f"no match: {text}" for ok, text in verdicts if not ok))
    return " | ".join(reasons)


def _samples(test: RuleTest, base: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The test's events, and what else its payload gave (ignored and rejected records)."""
    if test.event is not None:
        return [test.event], ""
    assert test.raw is not None  # a test has event or raw (RuleTest validates it)
    if base is None:
        raise ValueError("raw payloads are read relative to the rule file, and this rule has none")
    body = raw_file(base, test.raw).read_bytes().decode("utf-8", "surrogateescape")  # as `normalize` reads a file
    outcomes = normalize_payload(body, test.source or AUTO, TENANT)
    events = [o.event for o in outcomes if isinstance(o, NormalizedOutcome)]
    others = [f"{o.kind} ({o.reason}: {o.detail})" for o in outcomes if not isinstance(o, NormalizedOutcome)]
    return events, (f"{test.raw} also gave: {'; '.join(others[:3])}" if others else "")


def _result(rule: Rule, matcher: Matcher, test: RuleTest, base: Path | None) -> TestResult:
    try:
        events, note = _samples(test, base)
    except ValueError as exc:
        return TestResult(rule.rule_id, test.name, test.expect, "error", str(exc))
    matching = [event for event in events if matcher.match(event)]
    actual = "match" if matching else "no_match"
    if actual == test.expect:
        return TestResult(rule.rule_id, test.name, test.expect, actual)
    if not events:
        detail = f"{test.raw} gave no normalized event"
    else:
        shown = matching[0] if matching else events[0]
        which = f"event {events.index(shown) + 1} of {len(events)}: " if len(events) > 1 else ""
        detail = which + explain(rule, shown)
    return TestResult(rule.rule_id, test.name, test.expect, actual, "; ".join(filter(None, [detail, note])))


def run(rules: list[Rule], bases: dict[str, Path] | None = None, only: str | None = None) -> list[TestResult]:
    """Every test of the rules (disabled rules too); ``bases``: each rule's file directory, for raw
    payloads; ``only``: the tests whose rule id or name contains it."""
    results = []
    for rule in rules:
        tests = [t for t in rule.tests if only is None or only in rule.rule_id or only in t.name]
        if not tests:
            continue
        matcher = Matcher([rule.rule_id], [rule.pattern.branches])
        results += [_result(rule, matcher, test, (bases or {}).get(rule.rule_id)) for test in tests]
    return results


def junit(suites: list[tuple[str, list[TestResult]]]) -> bytes:
    """JUnit XML: a test suite per rule file, a test case per rule test (class: the rule id)."""
    root = ET.Element(
        "testsuites", tests=str(sum(len(r) for _, r in suites)), failures=str(sum(not t.passed for _, r in suites for t in r))
    )
    for origin, results in suites:
        suite = ET.SubElement(root, "testsuite", name=origin, tests=str(len(results)), failures=str(sum(not t.passed for t in results)))
        for result in results:
            case = ET.SubElement(suite, "testcase", classname=result.rule_id, name=result.name)
            if not result.passed:
                failure = ET.SubElement(case, "failure", message=f"expected {result.expected}, got {result.actual}")
                failure.text = result.detail
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml
