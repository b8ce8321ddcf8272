"""Compile time: the index is built in time linear (or n log n) in the rules' values, whatever their
shape, and says the same as the patterns do value by value (issue 11, "Compile time").

No absolute timing is asserted (the machine is shared): the numeric table is compared with a brute
force over random ranges and probes, the size of what compiling builds is counted, and where time
is measured it is a ratio between two sizes measured in the same run."""

from __future__ import annotations

import gc
import json
import logging
import math
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from moto import mock_aws

from cli.packs import RuleFileError, load_rule_files, resolve_tenant
from emulator.stack import ROOT
from handlers import tenant_settings
from handlers.rules.matcher import Matcher, compile_patterns
from handlers.rules.matcher.index import MAX_COPIES, MAX_LEVELS, Bucket, Level, NumericTable
from handlers.rules.matcher.parse import numeric_test, parse_pattern
from handlers.rules.model import Rule
from handlers.rules.ruleset import COMPLEXITY_BUDGET, RULE_UNITS, build, complexity, over_budget
from handlers.rules.store import CACHE_UNITS, OverBudget, RuleStore

SEED = 20261106

# Bounds the table must tell apart: equal, adjacent, signed zeros, tiny and huge, the limits of
# EventBridge's range, and the infinities a one-sided range has.
EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, -1e-300, 5e-324, 1e-9, 3.0, 3.0000000000000004, 5e9, -5e9, 4999999999.999999, 2.0**53]
PROBES = [*EDGES, math.inf, -math.inf, math.nan, sys.float_info.max, -sys.float_info.max, 1e308, 2.0**53 + 1, 7.5, -7.5, 1e10]

numbers = st.one_of(st.sampled_from(EDGES), st.integers(-20, 20).map(float), st.floats(-5e9, 5e9, allow_nan=False))


@st.composite
def ranges(draw: st.DrawFn) -> tuple[float, bool, float, bool]:
    """A range as parse._parse_numeric gives it: one or two bounds, lo <= hi (possibly empty)."""
    shape = draw(st.sampled_from(["lower", "upper", "both", "equal"]))
    if shape == "equal":
        x = draw(numbers)
        return x, True, x, True
    lo, hi = draw(numbers), draw(numbers)
    lo, hi = min(lo, hi), max(lo, hi)
    lo_inc, hi_inc = draw(st.booleans()), draw(st.booleans())
    if shape == "lower":
        return lo, lo_inc, math.inf, False
    if shape == "upper":
        return -math.inf, False, hi, hi_inc
    return lo, lo_inc, hi, hi_inc


def _table_says(ranges: list[tuple[float, bool, float, bool]], probes: list[float]) -> None:
    buckets = {bounds: Bucket() for bounds in ranges}  # equal bounds share a bucket, as in the index
    table = NumericTable(buckets)
    for probe in probes:
        hit: list[Bucket] = []
        table.probe(probe, hit)
        expected = {id(b) for bounds, b in buckets.items() if numeric_test(bounds)(probe)}
        assert {id(b) for b in hit} == expected, (probe, [bounds for bounds, b in buckets.items() if id(b) in expected])
        assert len(hit) == len(expected), f"a bucket reached twice for {probe}"


@seed(SEED)
@settings(max_examples=400, deadline=None, database=None)
@given(found=st.lists(ranges(), min_size=1, max_size=40), extra=st.lists(numbers, max_size=20))
def test_the_numeric_table_holds_a_number_in_exactly_the_ranges_numeric_test_accepts(found, extra):
    # Probe every bound, a little either side of it, between neighbours, and outside everything.
    points = sorted({x for lo, _, hi, _ in found for x in (lo, hi) if math.isfinite(x)})
    around = [y for x in points for y in (x, math.nextafter(x, -math.inf), math.nextafter(x, math.inf))]
    between = [(a + b) / 2 for a, b in zip(points, points[1:])]
    _table_says(found, [*around, *between, *PROBES, *extra])


def test_the_numeric_table_on_many_random_ranges_against_a_brute_force():
    rng = random.Random(SEED)
    for _ in range(20):
        found = []
        for _ in range(rng.randrange(1, 300)):
            lo = float(rng.randrange(-50, 50))
            hi = lo + rng.choice([0, 0, 1, rng.randrange(100)])
            kind = rng.random()
            if kind < 0.15:
                found.append((-math.inf, False, hi, rng.random() < 0.5))
            elif kind < 0.3:
                found.append((lo, rng.random() < 0.5, math.inf, False))
            elif kind < 0.4:
                found.append((lo, True, lo, True))
            else:
                found.append((lo, rng.random() < 0.5, hi, rng.random() < 0.5))
        _table_says(found, [x / 2 for x in range(-210, 210)] + PROBES)


def test_the_numeric_table_holds_n_nested_ranges_in_n_log_n_references():
    """A table of the ranges active in each segment would hold n² references for nested ranges."""
    n = 4000
    buckets = {(float(i), True, float(2 * n - i), False): Bucket() for i in range(n)}
    table = NumericTable(buckets)
    references = sum(len(lists) for lists in table.paths)  # the node lists on every path, shared
    nodes = {id(lst): len(lst) for lists in table.paths for lst in lists}
    assert sum(nodes.values()) <= 2 * n * math.ceil(math.log2(4 * n + 1))
    assert references <= (2 * n + 1) * math.ceil(math.log2(4 * n + 1) + 1)
    hit: list[Bucket] = []
    table.probe(float(n), hit)  # inside every range
    assert len(hit) == n


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_is_in_no_range_of_a_compiled_rule(value: float):
    matcher = compile_patterns({"low": {"n": [{"numeric": ["<", 5]}]}, "high": {"n": [{"numeric": [">", 5]}]}})
    assert matcher.match({"n": value}) == []
    assert matcher.match({"n": 4}) == ["low"]


# -- what compiling builds ----------------------------------------------------------------------------


def index_size(level: Level) -> int:
    """Every place the index holds a branch (bucket entries, at every nested level), every level, and
    every reference of a numeric table: what building it cost, up to a constant."""
    size = 1 + len(level.always) + sum(len(entries) for entries in level.negative.values())
    for index in level.indexes.values():
        for bucket in index.buckets():
            size += len(bucket.entries)
            if bucket.child is not None:
                size += index_size(bucket.child)
        if index.ranges is not None:
            size += len(index.ranges.paths) + sum({id(lst): len(lst) for path in index.ranges.paths for lst in path}.values())
    return size


def expanded_values(patterns: dict[str, dict]) -> int:
    """The values of each branch ($or expanded), summed."""
    return sum(len(c.alternatives) for p in patterns.values() for branch in parse_pattern(p).branches for c in branch)


@pytest.mark.parametrize("values", [2, 4, 16, 64])
def test_a_branch_is_indexed_a_bounded_number_of_times_not_the_product_of_its_clauses(values: int):
    """Two rules of four clauses of ``values`` values each: nesting every bucket on the next clause
    used to index them values⁴ times (64 values: 16.7 million entries, a minute and gigabytes)."""
    pattern = {f"f{c}": [f"v{c}-{i}" for i in range(values)] for c in range(4)}
    patterns = {"a": pattern, "b": pattern}
    matcher = compile_patterns(patterns)
    size, values_in = index_size(matcher.root), expanded_values(patterns)
    assert size <= 2 * MAX_COPIES * MAX_LEVELS * values_in
    if values > MAX_COPIES:  # in as many buckets as it has values, and no deeper
        assert size <= 2 * values_in
    event = {f"f{c}": f"v{c}-{values - 1}" for c in range(4)}
    assert matcher.match(event) == ["a", "b"]
    assert matcher.match({**event, "f3": "other"}) == []


@pytest.mark.parametrize("enabled", [True, False])
def test_compiling_leaves_the_cyclic_collector_as_it_found_it(enabled: bool, monkeypatch: pytest.MonkeyPatch):
    seen: list[bool] = []
    original = Level.__init__

    def spy(self: Level, entries: list, depth: int = 0) -> None:
        seen.append(gc.isenabled())
        if any(entry.clauses[0][1].path == ("boom",) for entry in entries):
            raise MemoryError("building the index failed")
        original(self, entries, depth)

    monkeypatch.setattr(Level, "__init__", spy)
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert compile_patterns({"r": {"a": ["x"]}}).match({"a": "x"}) == ["r"]
        assert gc.isenabled() is enabled
        with pytest.raises(MemoryError):
            compile_patterns({"r": {"boom": ["x"]}})
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
    assert seen and not any(seen)  # paused while the index was built


# -- the complexity budget ------------------------------------------------------------------------------


def _shape(name: str, n: int, rng: random.Random) -> list[str]:
    """``n`` rule documents (JSON, as the rules table stores them) of one shape, each near the
    per-rule limits; the costliest shapes per unit of complexity that were found."""

    def one(i: int) -> dict:
        if name == "small rules":  # the baseline: what a unit costs in the plainest rules
            return {"app_name": [f"app-{i}"]}
        if name == "numeric ranges":
            return {
                "dst_endpoint": {
                    "port": [{"numeric": [">=", (lo := rng.randrange(10**5)), "<", lo + rng.randrange(1, 10**5)]} for _ in range(220)]
                }
            }
        if name == "$or of 64 over 120 ranges":
            return {
                "severity_id": [{"numeric": [">", (lo := rng.randrange(10**6)), "<=", lo + rng.randrange(1, 999)]} for _ in range(120)],
                "$or": [{f"x{j}": [{"exists": False}]} for j in range(64)],
            }
        if name == "a field of its own per rule":  # thousands of paths, each its own index (and no written walk)
            return {"user": {f"field_{i}": [f"v{i}"]}}
        if name == "16 two-value clauses":  # nests four levels, 16 copies
            return {f"f{c}": rng.sample([0, 1], 2) for c in range(16)}
        if name == "4 four-value clauses":
            return {f"f{c}": [rng.randrange(4) for _ in range(4)] for c in range(4)}
        if name == "IPv6 CIDR blocks":
            return {"src_endpoint": {"ip": [{"cidr": f"2001:db8:{rng.randrange(65536):x}::/{rng.randrange(33, 128)}"} for _ in range(170)]}}
        assert name == "wildcards of 8 stars"
        return {"url": {"hostname": [{"wildcard": "*".join(str(rng.randrange(10**6)) for _ in range(9))} for _ in range(100)]}}

    return [json.dumps({"rule_id": f"r{i}", "match": one(i)}) for i in range(n)]


SHAPES = [
    "numeric ranges",
    "$or of 64 over 120 ranges",
    "16 two-value clauses",
    "a field of its own per rule",
    "4 four-value clauses",
    "IPv6 CIDR blocks",
    "wildcards of 8 stars",
]


def _at_budget(name: str) -> list[str]:
    """As many rules of the shape as the budget holds."""
    rng = random.Random(SEED)
    per_rule = complexity(Rule.model_validate_json(_shape(name, 1, rng)[0]))
    documents = _shape(name, COMPLEXITY_BUDGET // per_rule, rng)
    assert over_budget(Rule.model_validate_json(d) for d in documents) is None
    return documents


def _load(documents: list[str]) -> tuple[float, Matcher]:
    """Seconds to do what RuleStore.load does with the documents (validate, compile), plus building
    the bitsets, which the matcher does on the first events if they are candidates of many rules;
    and the matcher."""
    started = time.perf_counter()
    matcher = build("t", "v", [Rule.model_validate_json(d) for d in documents]).matcher
    assert matcher.bitsets.slots
    return time.perf_counter() - started, matcher


def _ratio(documents: list[str], small: list[str]) -> tuple[float, Matcher]:
    """Compiling ``documents`` against compiling ``small`` right before (best of three each), and a
    matcher it made."""
    baseline = min(_load(small)[0] for _ in range(3))
    timings = []
    for _ in range(3):
        seconds, matcher = _load(documents)  # one matcher alive at a time, as RuleStore holds one
        timings.append(seconds)
    return round(min(timings) / baseline, 2), matcher


def test_the_costliest_shapes_at_the_budget_cost_a_few_small_rules_worth_per_unit():
    """What the budget promises (compiling within a second) holds if no shape costs much more per
    unit than the plainest rules do: measured against them in the same run, each shape right after
    the baseline (best of three each), so no absolute time. The worst shapes measured 2-3x the
    baseline (about 0.35-0.6 s at the budget on a shared 2-core machine, the baseline 0.2 s); a
    super-linear step would be far over (the old numeric table: 56 rules of 220 ranges, minutes).
    The index itself stays O(budget log budget) (the numeric table's tree; the others O(budget))."""
    small = _at_budget("small rules")
    ratios: dict[str, float] = {}
    for name in SHAPES:
        documents = _at_budget(name)
        # A shape over the bound is measured again, twice at most: a neighbour's burst of load on the
        # shared cores passes (one run measured 8.4x under a benchmark running beside the suite), a
        # super-linear step does not.
        ratios[name], matcher = _ratio(documents, small)
        for _ in range(2):
            if ratios[name] <= 8:
                break
            ratios[name] = min(ratios[name], _ratio(documents, small)[0])
        size = index_size(matcher.root)  # an index just timed, not another compile
        assert size <= COMPLEXITY_BUDGET * math.log2(COMPLEXITY_BUDGET), (name, size)
    assert max(ratios.values()) <= 8, ratios


KB_PER_UNIT = 2  # what the rule cache's bound assumes (handlers/rules/store.py, CACHE_UNITS)


@pytest.mark.parametrize("name", ["numeric ranges", "wildcards of 8 stars"])
def test_compiled_rules_hold_at_most_two_kilobytes_per_complexity_unit(name: str):
    """The rule cache is bounded in complexity units because memory follows them: compiled with
    their bitsets, the two costliest shapes at the budget allocate 1.2 and 1.0 KB per unit (the
    others 0.04-0.43, plain rules 0.26: measured once, too slow under tracemalloc to check every
    run); a shape far over would let CACHE_UNITS of it exhaust the function's memory. tracemalloc
    counts allocations, not time: no dependence on the machine's load."""
    documents = _at_budget(name)
    units = sum(complexity(Rule.model_validate_json(d)) for d in documents)
    gc.collect()
    tracemalloc.start()
    try:
        matcher = build("t", "v", [Rule.model_validate_json(d) for d in documents]).matcher
        assert matcher.bitsets.slots  # built, so counted
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held / 1024 / units <= KB_PER_UNIT, f"{held / 1024 / units:.2f} KB per unit"
    assert CACHE_UNITS * KB_PER_UNIT / 1024 <= 150  # MB at worst: with the handler's ~60 MB, within the 512 MB default


def _push_sized(rules_table: Any, tenant: str, units: int) -> None:
    values = (units - RULE_UNITS) // 2  # each value counts twice: as a value and as an alternative of its branch
    rule = {"rule_id": f"{tenant}-r", "match": {"a": [f"{tenant}-{i}" for i in range(values)]}}
    assert complexity(Rule.model_validate(rule)) == units
    RuleStore(rules_table).push(tenant, [Rule.model_validate(rule)])


def test_the_rule_cache_drops_the_least_recently_used_tenants_beyond_its_bound(rules_table: Any):
    """One function serves every tenant: what it keeps compiled is bounded, the tenants used least
    recently are dropped first and compiled again when they come back, and the tenant being
    evaluated is kept whatever its size."""
    for tenant in ("acme", "globex", "initech"):
        _push_sized(rules_table, tenant, 100)
    store = RuleStore(rules_table, cache_units=250)  # room for two of them
    acme, globex = store.load("acme"), store.load("globex")
    assert store.load("acme") is acme  # a hit: now the most recently used
    initech = store.load("initech")  # over the bound: globex, the least recently used, goes
    assert store.cached_version("globex") is None
    assert store.load("acme") is acme and store.load("initech") is initech
    again = store.load("globex")
    assert again is not globex and again.matcher.match({"a": "globex-7"}) == ["globex-r"]  # compiled again, same verdicts
    assert store.cached_version("acme") is None  # the least recently used then (initech was read after it)
    assert store.cached_version("initech") is not None
    big = RuleStore(rules_table, cache_units=50)
    assert big.load("acme").matcher.match({"a": "acme-1"}) == ["acme-r"]
    assert big.cached_version("acme") is not None  # over the bound alone, and kept: it is being evaluated
    big.load("globex")
    assert big.cached_version("acme") is None and big.cached_version("globex") is not None


def test_the_budget_counts_each_rule_its_values_and_each_alternatives_values():
    rule = Rule.model_validate(
        {"rule_id": "r", "match": {"a": ["x", "y"], "$or": [{"b": [1]}, {"c": [{"anything-but": ["p", "q", "s"]}]}]}}
    )
    # 4 + 7 values (an anything-but list counts 1 + its 3) + alternatives (a: 2, b: 1) + (a: 2, c: 1)
    assert complexity(rule) == RULE_UNITS + 7 + 3 + 3


def test_over_budget_names_the_measure_the_budget_and_the_biggest_rules():
    big = Rule.model_validate({"rule_id": "big", "match": {"a": [f"v{i}" for i in range(200)]}})
    small = [Rule.model_validate({"rule_id": f"s{i}", "match": {"a": ["x"]}}) for i in range(3)]
    assert over_budget([big, *small], budget=complexity(big) + 3 * complexity(small[0])) is None
    message = over_budget([*small, big], budget=complexity(big))
    assert message is not None
    assert message.startswith(f"rule set complexity {complexity(big) + 18:,} is over the budget of {complexity(big):,} ")
    assert "per rule" in message and "$or" in message
    assert message.endswith(f"biggest: big {complexity(big):,}, s0 6, s1 6, s2 6")


@pytest.fixture
def rules_table() -> Iterator[Any]:
    with mock_aws():
        yield boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="rules",
            KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def _over(n: int = 0) -> list[Rule]:
    per_rule = Rule.model_validate({"rule_id": "x", "match": {"a": [f"v{i}" for i in range(250)]}})
    count = COMPLEXITY_BUDGET // complexity(per_rule) + 1 + n
    return [Rule.model_validate({"rule_id": f"r{k}", "match": {"a": [f"v{k}-{i}" for i in range(250)]}}) for k in range(count)]


def test_push_refuses_a_rule_set_over_the_budget_and_writes_nothing(rules_table: Any):
    store = RuleStore(rules_table)
    with pytest.raises(
        OverBudget,
        match=r"^tenant acme: rule set complexity [\d,]+ is over the budget of " + f"{COMPLEXITY_BUDGET:,}" + r" .*biggest: r0 504",
    ):
        store.push("acme", _over())
    assert rules_table.scan()["Items"] == []
    store.push("acme", _over()[:-1])  # one rule fewer: within


def test_a_stored_rule_set_over_the_budget_still_loads_with_a_warning(rules_table: Any, caplog: pytest.LogCaptureFixture):
    rules = _over()
    with rules_table.batch_writer() as batch:  # stored before the budget existed
        for rule in rules:
            batch.put_item(Item={"tenant_id": "acme", "rule_id": rule.rule_id, "document": rule.model_dump_json(exclude_none=True)})
    tenant_settings.write(rules_table, "acme", "v1", len(rules))
    with caplog.at_level(logging.WARNING, logger="handlers.rules.store"):
        ruleset = RuleStore(rules_table).load("acme")
    assert ruleset.matcher.match({"a": "v3-7"}) == ["r3"]
    assert any("tenant acme: rule set complexity" in r.getMessage() and "compiled all the same" in r.getMessage() for r in caplog.records)


def _tenant_file(tmp_path: Path, rules: list[Rule]) -> Path:
    tenants = tmp_path / "rules" / "tenants"
    tenants.mkdir(parents=True)
    path = tenants / "acme.yaml"
    path.write_text(json.dumps({"tenant": "acme", "rules": [{"rule_id": r.rule_id, "match": {"app_name": r.match["a"]}} for r in rules]}))
    return path


def test_rules_validate_refuses_a_tenant_file_over_the_budget_naming_the_measure(tmp_path: Path):
    path = _tenant_file(tmp_path, _over())
    with pytest.raises(
        RuleFileError, match=r"acme.yaml \(tenant acme\): rule set complexity [\d,]+ is over the budget of " + f"{COMPLEXITY_BUDGET:,}"
    ):
        resolve_tenant(path)
    result = subprocess.run([sys.executable, "-m", "cli", "rules", "validate", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"is over the budget of {COMPLEXITY_BUDGET:,} for one tenant" in result.stderr and "biggest: r0 504" in result.stderr
    _tenant_file(tmp_path / "within", _over()[:-1])
    assert len(load_rule_files(tmp_path / "within" / "rules" / "tenants" / "acme.yaml")[0].rules) == len(_over()) - 1


def test_rules_push_refuses_plain_files_over_the_budget_together_before_any_connection(tmp_path: Path):
    # Each file is within the budget; the tenant's rules from both are not. Refused with a sentence
    # (no traceback), before the table is even looked for: the endpoint below is never contacted.
    rules = _over()
    for name, part in (("one.json", rules[: len(rules) // 2]), ("two.json", rules[len(rules) // 2 :])):
        (tmp_path / name).write_text(json.dumps([{"rule_id": r.rule_id, "match": {"app_name": r.match["a"]}} for r in part]))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "rules", "push", "--tenant", "acme", str(tmp_path), "--table", "t", "--endpoint", "http://127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"invalid: {tmp_path}: rule set complexity") and "Traceback" not in result.stderr
