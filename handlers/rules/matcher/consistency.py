"""Array consistency (as EventBridge, whose engine is AWS Event Ruler): when a branch names several
fields under an array of objects, they must match within one element of that array. ``Plan`` is a
branch's clauses as a tree of field names; ``consistent`` verifies it on the event's structure."""

from __future__ import annotations

from typing import Any, Sequence

from handlers.rules.matcher.parse import Clause

_MISSING = object()


def leaves(value: Any, out: list[Any]) -> None:
    """The values of a field, arrays flattened (objects are not values)."""
    if isinstance(value, list):
        for element in value:
            leaves(element, out)
    elif not isinstance(value, dict):
        out.append(value)


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
                leaves(child, values)  # the field's own values: not in an element of an array it is
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
