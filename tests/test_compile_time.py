"""Compile time: the index is built in time linear (or n log n) in the rules' values, whatever their
shape, and says the same as the patterns do value by value (issue 11, "Compile time").

No absolute timing is asserted (the machine is shared): the numeric table is compared with a brute
force over random ranges and probes, the size of what compiling builds is counted, and where time
is measured it is a ratio between two sizes measured in the same run."""

from __future__ import annotations

import gc
import math
import random
import sys

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from handlers.rules.matcher import compile_patterns
from handlers.rules.matcher.index import MAX_COPIES, MAX_LEVELS, Bucket, Level, NumericTable
from handlers.rules.matcher.parse import numeric_test, parse_pattern

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
