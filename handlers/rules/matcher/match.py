"""Matching: one walk of the event collects the values of every field path rules mention; then one
of two strategies, with the same verdicts, decides the branches: the index turns the values into
candidate branches and verifies only those (cheap when rules are selective), or the bitsets decide
every branch at a fixed cost per field path (cheap when each event is a candidate of many rules:
``bitset``). ``Matcher`` picks per event from the candidate counts it observes (see ``_Planner``).

Array consistency (as EventBridge, whose engine is AWS Event Ruler): when a branch names several
fields under an array of objects, they must match within one element of that array. The walk notes
whether it went through an array of objects (or of arrays) on a path rules mention; when it did not
(most events), the values flattened per path give the exact verdict. When it did, a branch whose
fields share such a prefix is verified on the event's structure instead (``consistency``)."""

from __future__ import annotations

import gc
import itertools
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

from handlers.rules.matcher.bitset import Bitsets
from handlers.rules.matcher.consistency import _MISSING, Plan, consistent, leaves, needs_consistency
from handlers.rules.matcher.index import Entry, Level
from handlers.rules.matcher.parse import Clause

Tree = tuple[tuple[str, "int | None", "Tree | None"], ...]  # per key: its path id if a path ends there, the keys below


class PathTree:
    """The field paths rules mention, as a tree, so one walk of the event collects every value."""

    def __init__(self, paths: Iterable[tuple[str, ...]]) -> None:
        nested: dict[str, Any] = {}
        self.ids: dict[tuple[str, ...], int] = {}
        for path in paths:
            self.ids.setdefault(path, len(self.ids))
            node = nested
            for key in path[:-1]:
                node = node.setdefault(key, [None, {}])[1]
            leaf = node.setdefault(path[-1], [None, {}])
            leaf[0] = self.ids[path]
        self.root = _frozen(nested)
        # The walk of every event, written for these paths: what ``walk`` does, as straight-line code.
        # Not for thousands of fields (a tenant's junk paths): writing costs more than it saves then.
        self.collect_noting_arrays: Callable[[Any], tuple[list[list[Any]], bool]] = (
            _written_walk(self.root, len(self.ids)) if _nodes(self.root) <= WRITTEN_NODES else self.walk
        )

    def collect(self, event: Any) -> list[list[Any]]:
        return self.collect_noting_arrays(event)[0]

    def walk(self, event: Any) -> tuple[list[list[Any]], bool]:
        """The values of each path (arrays flattened), and whether the walk went through an array
        on the way to a path's values (an array of objects, or of arrays): only then can array
        consistency change a verdict. ``collect_noting_arrays`` gives the same, faster."""
        values: list[list[Any]] = [[] for _ in self.ids]
        arrays: list[bool] = []
        _walk(event, self.root, values, arrays)
        return values, bool(arrays)


# The most field names a written walk holds, its groups counted (the normalized event has 85; the
# bench's rule sets name 20-28). Writing one costs about 0.06 ms a name, so a tenant naming
# thousands of fields (each its own path, a few units of the complexity budget apiece) would spend
# most of its compile time writing code that walks fields no event has.
WRITTEN_NODES = 512


def _nodes(tree: Tree) -> int:
    return sum(1 + (_nodes(children) if children else 0) for _, _, children in tree)


def _frozen(nested: dict[str, Any]) -> Tree:
    """The tree as tuples: the walk reads every node of it for every event, and iterating a tuple
    of triples is cheaper than a dict's items unpacked."""
    return tuple((key, leaf_id, _frozen(children) if children else None) for key, (leaf_id, children) in nested.items())


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _walk(node: Any, tree: Tree, values: list[list[Any]], arrays: list[bool]) -> None:
    if isinstance(node, list):
        arrays.append(True)
        for element in node:
            _walk(element, tree, values, arrays)
        return
    if not isinstance(node, dict):
        return
    get = node.get
    for key, leaf_id, children in tree:
        value = get(key, _MISSING)
        if value is _MISSING:
            continue
        if leaf_id is not None:
            if value.__class__ in _SCALARS:  # most values: no call to flatten them
                values[leaf_id].append(value)
            else:
                leaves(value, values[leaf_id])
        if children is not None and isinstance(value, (dict, list)):
            _walk(value, children, values, arrays)


def _written_walk(root: Tree, count: int) -> Callable[[Any], tuple[list[list[Any]], bool]]:
    """``PathTree.walk`` as one function written for the tree: a ``get`` per key the rules name,
    nested as the paths nest, the path ids as constants. Walking the tree as data (a loop over its
    tuples, a call per object) was a third of the selective set's matching time; this costs about
    half as much. Lists and anything but a plain dict go to ``_walk``, so the verdicts are the same (tests
    compare the two on every event shape). Keys are written with ``repr``, a literal of any string."""
    lines = ["def collect(event):", f"    values = [{', '.join(['[]'] * count)}]", "    arrays = []"]
    namespace: dict[str, Any] = {"MISSING": _MISSING, "SCALARS": _SCALARS, "leaves": leaves, "_walk": _walk, "root": root}
    names = itertools.count()

    def write(node: str, tree: Tree, indent: str) -> None:
        for key, leaf_id, children in tree:
            value = f"v{next(names)}"
            lines.extend([f"{indent}{value} = {node}.get({key!r}, MISSING)", f"{indent}if {value} is not MISSING:"])
            inner = indent + "    "
            if leaf_id is not None:
                lines.extend([f"{inner}if {value}.__class__ in SCALARS:", f"{inner}    values[{leaf_id}].append({value})",
                              f"{inner}else:", f"{inner}    leaves({value}, values[{leaf_id}])"])  # fmt: skip
            if children is not None:
                subtree = f"tree{value}"
                namespace[subtree] = children
                lines.append(f"{inner}if {value}.__class__ is dict:")
                write(value, children, inner + "    ")
                lines.extend([f"{inner}elif isinstance({value}, (dict, list)):", f"{inner}    _walk({value}, {subtree}, values, arrays)"])

    lines.extend(
        ["    if event.__class__ is not dict:", "        _walk(event, root, values, arrays)", "        return values, bool(arrays)"]
    )
    write("event", root, "    ")
    lines.append("    return values, bool(arrays)")
    exec(compile("\n".join(lines), "<path walk>", "exec"), namespace)  # noqa: S102
    walk: Callable[[Any], tuple[list[list[Any]], bool]] = namespace["collect"]
    return walk


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Building the index allocates hundreds of thousands of objects that all stay alive, and none in a
    cycle; the cyclic collector, triggered by the allocations, would walk them (and everything else
    alive) again and again, for half the compile time. Paused, and resumed as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Planner:
    """Which strategy decides the next event: the index while events have few candidates, the
    bitsets once candidates per event (a running mean over the last ~16 events the index decided)
    exceed ``PER_SLOT`` per field slot. The index verifies each candidate, about a microsecond
    apiece; the bitsets cost about as much per field slot whatever the number of matches (measured
    with ``./build.sh bench``'s selective and broad sets). While the bitsets decide, every
    ``RESAMPLE``th event is decided by the index again, so a stream that turns selective switches
    back. Both give the same verdicts (tests/test_matcher_strategies.py): the plan changes only
    the cost."""

    PER_SLOT = 3.0
    RESAMPLE = 64

    __slots__ = ("mean", "limit", "bitsets", "count")

    def __init__(self, slots: int) -> None:
        self.mean = 0.0
        self.limit = self.PER_SLOT * max(slots, 1)
        self.bitsets = False
        self.count = 0

    def use_bitsets(self) -> bool:
        self.count += 1
        return self.bitsets and self.count % self.RESAMPLE != 0

    def observed(self, candidates: int) -> None:
        # A resample (the bitsets deciding) weighs half: a stream that turned selective is back on
        # the index within a few resamples, not after the ~16 a running mean would need.
        self.mean += (candidates - self.mean) / (2 if self.bitsets else 16)
        self.bitsets = self.mean > self.limit


class Matcher:
    """Compiled rules: ``match(event)`` returns the ids of the rules whose pattern matches."""

    def __init__(self, rule_ids: list[str], patterns: Sequence[Sequence[Sequence[Clause]]]) -> None:
        """``patterns[n]``: the branches of rule ``rule_ids[n]`` (``Pattern.branches``)."""
        self.rule_ids = rule_ids
        with _no_cyclic_gc():
            paths = sorted({c.path for branches in patterns for clauses in branches for c in clauses})
            self.tree = PathTree(paths)
            ids = self.tree.ids
            self.entries = [
                Entry(
                    rule,
                    [(ids[c.path], c) for c in clauses],
                    plan=Plan([(c.path, c) for c in clauses]) if needs_consistency(clauses) else None,
                )
                for rule, branches in enumerate(patterns)
                for clauses in branches
            ]
            self.root = Level(self.entries)
        self._bitsets: Bitsets | None = None  # built when first needed: selective rule sets never pay for it
        self.planner = _Planner(len(paths))

    @property
    def bitsets(self) -> Bitsets:
        if self._bitsets is None:
            with _no_cyclic_gc():
                self._bitsets = Bitsets([(e.rule, e.clauses, e.plan) for e in self.entries], self.rule_ids)
        return self._bitsets

    def match(self, event: dict[str, Any]) -> list[str]:
        values, arrays = self.tree.collect_noting_arrays(event)
        if self.planner.use_bitsets():
            return self.bitsets.match(values, event, arrays)
        matched: set[int] = set()
        self.planner.observed(self._match_indexed(values, event, arrays, matched))
        ids = self.rule_ids
        return [ids[r] for r in sorted(matched)]

    def match_indexed(self, event: dict[str, Any]) -> list[str]:
        """``match`` by the index alone (tests and benchmarks compare the strategies)."""
        values, arrays = self.tree.collect_noting_arrays(event)
        matched: set[int] = set()
        self._match_indexed(values, event, arrays, matched)
        return [self.rule_ids[r] for r in sorted(matched)]

    def match_bitsets(self, event: dict[str, Any]) -> list[str]:
        """``match`` by the bitsets alone."""
        values, arrays = self.tree.collect_noting_arrays(event)
        return self.bitsets.match(values, event, arrays)

    def _match_indexed(self, values: list[list[Any]], event: Any, arrays: bool, matched: set[int]) -> int:
        """Adds the matching rules to ``matched``; returns the number of candidates verified."""
        candidates: set[Entry] = set()
        self.root.collect(values, candidates)
        if not arrays:  # the values flattened per path decide every branch (most events)
            for entry in candidates:
                if entry.rule in matched:
                    continue
                for path_id, clause in entry.clauses:  # a loop, not all(...): no generator per candidate
                    if not clause.satisfied(values[path_id]):
                        break
                else:
                    matched.add(entry.rule)
        else:
            for entry in candidates:
                if entry.rule in matched:
                    continue
                if entry.plan is not None:  # its fields may sit in elements of one array
                    if consistent(event, entry.plan):
                        matched.add(entry.rule)
                elif all(clause.satisfied(values[path_id]) for path_id, clause in entry.clauses):
                    matched.add(entry.rule)
        return len(candidates)

    def __len__(self) -> int:
        return len(self.rule_ids)
