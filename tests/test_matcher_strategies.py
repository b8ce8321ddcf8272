"""The matcher's two strategies and the planner choosing between them (handlers/rules/matcher/match.py).

The verdicts of both strategies are compared on generated rules and events in test_rules_engine.py
(with moto's) and test_array_consistency.py (with Event Ruler's definition); here: that the planner
sends a broad rule set to the bitsets and keeps a selective one on the index, that it switches
back when the stream turns selective, and that whichever decides, ``match`` gives the verdicts of
both. The choice rests on candidate counts, never on timings, so these tests are deterministic."""

from __future__ import annotations

from handlers.rules.matcher import compile_patterns
from handlers.rules.matcher.bitset import mask, set_bits

VENDORS = ["Okta", "Zscaler", "Netskope", "CrowdStrike", "Proofpoint"]


def _broad() -> dict[str, dict]:
    """Rules most events match: anything-but two vendors, a wide severity range, a short suffix."""
    rules = {}
    for n in range(300):
        excluded = [VENDORS[n % 5], VENDORS[(n + 1) % 5]]
        rules[f"b{n:03d}"] = {
            "vendor": [{"anything-but": excluded}],
            "severity": [{"numeric": [">=", n % 3, "<=", 6]}],
            "$or": [{"user": [{"wildcard": f"*{n % 4}.example"}]}, {"host": [{"prefix": "h"}]}],
        }
    return rules


def _event(n: int) -> dict:
    return {"vendor": VENDORS[n % 5], "severity": n % 7, "user": f"u{n}@corp{n % 4}.example", "host": f"h{n}"}


def test_a_broad_rule_set_is_decided_by_the_bitsets_with_the_indexs_verdicts():
    matcher = compile_patterns(_broad())
    verdicts = [matcher.match(_event(n)) for n in range(100)]
    assert matcher.planner.bitsets and matcher._bitsets is not None
    assert verdicts == [matcher.match_indexed(_event(n)) for n in range(100)]
    assert sum(map(len, verdicts)) / len(verdicts) > 30  # broad indeed: many matches per event


def test_a_selective_rule_set_stays_on_the_index_and_never_builds_bitsets():
    matcher = compile_patterns({f"s{n}": {"user": [f"u{n}@corp{n % 4}.example"], "vendor": [VENDORS[n % 5]]} for n in range(300)})
    verdicts = [matcher.match(_event(n)) for n in range(500)]
    assert not matcher.planner.bitsets and matcher._bitsets is None
    assert verdicts[5] == ["s5"] and verdicts == [matcher.match_bitsets(_event(n)) for n in range(500)]


def test_a_stream_that_turns_selective_goes_back_to_the_index():
    matcher = compile_patterns(_broad())
    for n in range(100):
        matcher.match(_event(n))
    assert matcher.planner.bitsets
    quiet = {"vendor": "Okta"}  # no severity: no rule is even a candidate
    for _ in range(10 * matcher.planner.RESAMPLE):
        assert matcher.match(quiet) == []
    assert not matcher.planner.bitsets


def test_bits_in_and_out():
    for bits in ([], [0], [7, 8], [3, 64, 65, 1000], list(range(0, 300, 3))):
        assert set_bits(mask(bits)) == sorted(bits)
