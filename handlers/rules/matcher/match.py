"""Matching: one walk of the event collects the values of every field path rules mention, the index
turns them into candidate branches, and only those are verified.

Array consistency (as EventBridge, whose engine is AWS Event Ruler): when a branch names several
fields under an array of objects, they must match within one element of that array. The walk notes
whether it went through an array of objects (or of arrays) on a path rules mention; when it did not
(most events), the values flattened per path give the exact verdict. When it did, a branch whose
fields share such a prefix is verified on the event's structure instead (``consistent``)."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from handlers.rules.matcher.index import Entry, Level
from handlers.rules.matcher.parse import Clause

_MISSING = object()


class PathTree:
    """The field paths rules mention, as a tree, so one walk of the event collects every value."""

    def __init__(self, paths: Iterable[tuple[str, ...]]) -> None:
        self.root: dict[str, Any] = {}
        self.ids: dict[tuple[str, ...], int] = {}
        for path in paths:
            self.ids.setdefault(path, len(self.ids))
            node = self.root
            for key in path[:-1]:
                node = node.setdefault(key, [None, {}])[1]
            leaf = node.setdefault(path[-1], [None, {}])
            leaf[0] = self.ids[path]

    def collect(self, event: Any) -> list[list[Any]]:
        return self.collect_noting_arrays(event)[0]

    def collect_noting_arrays(self, event: Any) -> tuple[list[list[Any]], bool]:
        """The values of each path (arrays flattened), and whether the walk went through an array
        on the way to a path's values (an array of objects, or of arrays): only then can array
        consistency change a verdict."""
        values: list[list[Any]] = [[] for _ in self.ids]
        arrays: list[bool] = []
        _walk(event, self.root, values, arrays)
        return values, bool(arrays)


def _walk(node: Any, tree: dict[str, Any], values: list[list[Any]], arrays: list[bool]) -> None:
    if isinstance(node, list):
        arrays.append(True)
        for element in node:
            _walk(element, tree, values, arrays)
        return
    if not isinstance(node, dict):
        return
    for key, (leaf_id, children) in tree.items():
        value = node.get(key, _MISSING)
        if value is _MISSING:
            continue
        if leaf_id is not None:
            _leaves(value, values[leaf_id])
        if children and isinstance(value, (dict, list)):
            _walk(value, children, values, arrays)


def _leaves(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for element in value:
            _leaves(element, out)
    elif not isinstance(value, dict):
        out.append(value)


# -- array consistency -------------------------------------------------------------------------------


class Plan:
    """A branch's clauses as a tree of field names, to verify the branch on the event's structure.

    ``groups``: per field name at this level, the clauses whose path ends there and the plan of
    those that go deeper. ``absent_ok``: whether every clause below is satisfied when no value of
    its path exists (``exists: false``)."""

    __slots__ = ("groups", "absent_ok")

    def __init__(self, clauses: Sequence[tuple[tuple[str, ...], Clause]], depth: int = 0) -> None:
        grouped: dict[str, tuple[list[Clause], list[tuple[tuple[str, ...], Clause]]]] = {}
        for path, clause in clauses:
            ends, deeper = grouped.setdefault(path[depth], ([], []))
            if len(path) == depth + 1:
                ends.append(clause)
            else:
                deeper.append((path, clause))
        self.groups = tuple((key, tuple(ends), Plan(deeper, depth + 1) if deeper else None) for key, (ends, deeper) in grouped.items())
        self.absent_ok = all(clause.if_absent for _, clause in clauses)


def needs_consistency(clauses: Sequence[Clause]) -> bool:
    """Whether array consistency can change the verdict of this conjunction on some event: two of
    its fields can sit in one array of objects (their paths share a first field name, and both go
    below it: a value named by a path that ends at the array is the array's own, in no element)."""
    firsts = [c.path[0] for c in clauses if len(c.path) > 1]
    return len(set(firsts)) < len(firsts)


def consistent(event: Any, plan: Plan) -> bool:
    """Whether the branch matches the event within one element of every array its fields share.

    Event Ruler's rule ("refuse any match in which two fields are within JSON objects that are in
    different elements of the same array"), computed over the event's structure rather than by
    trying combinations of values, so its cost is linear in the event whatever the pattern:
    ``_verdicts`` gives, for a part of the event and the clauses below it, whether they can be
    satisfied with at least one value (which then fixes the element of each array above it), and
    whether they are all satisfied by absence (``exists: false``, with no element fixed)."""
    with_value, by_absence = _verdicts(event, plan)
    return with_value or by_absence


def _verdicts(node: Any, plan: Plan) -> tuple[bool, bool]:
    if isinstance(node, list):
        # With a value: in one element. By absence: in every element (none is singled out).
        with_value, by_absence, elements = False, True, False
        for element in node:
            if isinstance(element, (dict, list)):
                elements = True
                one, none = _verdicts(element, plan)
                with_value = with_value or one
                by_absence = by_absence and none
        return (with_value, by_absence) if elements else (False, plan.absent_ok)
    # An object: its fields hold distinct arrays, so each part is decided alone; together they are
    # satisfied with a value if each part is (either way) and one part with a value.
    any_value, every_absent = False, True
    for key, ends, deeper in plan.groups:
        child = node.get(key, _MISSING)
        if ends:
            values: list[Any] = []
            if child is not _MISSING:
                _leaves(child, values)  # the field's own values: not in an element of an array it is
            for clause in ends:
                one, none = (clause.satisfied(values), False) if values else (False, clause.if_absent)
                if not (one or none):
                    return False, False
                any_value = any_value or one
                every_absent = every_absent and none
        if deeper is not None:
            one, none = _verdicts(child, deeper) if isinstance(child, (dict, list)) else (False, deeper.absent_ok)
            if not (one or none):
                return False, False
            any_value = any_value or one
            every_absent = every_absent and none
    return any_value, every_absent


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


class Matcher:
    """Compiled rules: ``match(event)`` returns the ids of the rules whose pattern matches."""

    def __init__(self, rule_ids: list[str], patterns: Sequence[Sequence[Sequence[Clause]]]) -> None:
        """``patterns[n]``: the branches of rule ``rule_ids[n]`` (``Pattern.branches``)."""
        self.rule_ids = rule_ids
        with _no_cyclic_gc():
            paths = sorted({c.path for branches in patterns for clauses in branches for c in clauses})
            self.tree = PathTree(paths)
            ids = self.tree.ids
            entries = [
                Entry(
                    rule,
                    [(ids[c.path], c) for c in clauses],
                    plan=Plan([(c.path, c) for c in clauses]) if needs_consistency(clauses) else None,
                )
                for rule, branches in enumerate(patterns)
                for clauses in branches
            ]
            self.root = Level(entries)

    def match(self, event: dict[str, Any]) -> list[str]:
        values, arrays = self.tree.collect_noting_arrays(event)
        candidates: set[Entry] = set()
        self.root.collect(values, candidates)
        matched: set[int] = set()
        if not arrays:  # the values flattened per path decide every branch (most events)
            for entry in candidates:
                if entry.rule not in matched and all(clause.satisfied(values[path_id]) for path_id, clause in entry.clauses):
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
        ids = self.rule_ids
        return [ids[r] for r in sorted(matched)]

    def __len__(self) -> int:
        return len(self.rule_ids)
