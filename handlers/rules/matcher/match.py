"""Matching: one walk of the event collects the values of every field path rules mention, the index
turns them into candidate branches, and only those are verified."""

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
        values: list[list[Any]] = [[] for _ in self.ids]
        _walk(event, self.root, values)
        return values


def _walk(node: Any, tree: dict[str, Any], values: list[list[Any]]) -> None:
    if isinstance(node, list):
        for element in node:
            _walk(element, tree, values)
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
            _walk(value, children, values)


def _leaves(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for element in value:
            _leaves(element, out)
    elif not isinstance(value, dict):
        out.append(value)


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
            entries = [Entry(rule, [(ids[c.path], c) for c in clauses]) for rule, branches in enumerate(patterns) for clauses in branches]
            self.root = Level(entries)

    def match(self, event: dict[str, Any]) -> list[str]:
        values = self.tree.collect(event)
        candidates: set[Entry] = set()
        self.root.collect(values, candidates)
        matched: set[int] = set()
        for entry in candidates:
            if entry.rule not in matched and all(clause.satisfied(values[path_id]) for path_id, clause in entry.clauses):
                matched.add(entry.rule)
        ids = self.rule_ids
        return [ids[r] for r in sorted(matched)]

    def __len__(self) -> int:
        return len(self.rule_ids)
