"""Bitset evaluation, the matcher's second strategy (``match.Matcher`` picks it when events are
candidates of many rules: ``anything-but`` lists, wide numeric ranges, short wildcards, CIDR blocks
many rules share): each branch of the rule set is one bit of a big integer; per field path, the
event's values give the set of branches whose clause on that path they satisfy, and the sets are
ANDed across the paths.

A candidate list verified branch by branch (the index) costs per candidate, and a broad rule set
makes every event a candidate of 10-20% of its rules; here the cost per event is one probe of each
path's value maps and a few big-integer operations per path, whatever the number of matches. An
alternative shared by many branches is tested once for all of them (one map entry, one mask).

A branch naming one path twice (``{"a": [...], "$or": [{"a": [...]}, ...]}``) puts its second
clause in a second *slot* of that path, so each slot holds at most one clause per branch."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from handlers.rules.matcher.consistency import consistent
from handlers.rules.matcher.index import NumericTable
from handlers.rules.matcher.operators import Kind
from handlers.rules.matcher.parse import Alternative, Clause, cidr_keys

Test = Callable[[Any], bool]


def mask(bits: Sequence[int]) -> int:
    """The integer with these bits set, built once (OR-ing bit by bit would copy a growing integer)."""
    if not bits:
        return 0
    data = bytearray(max(bits) // 8 + 1)
    for bit in bits:
        data[bit >> 3] |= 1 << (bit & 7)
    return int.from_bytes(data, "little")


_BITS_OF_BYTE = tuple(tuple(k for k in range(8) if byte >> k & 1) for byte in range(256))


def set_bits(value: int) -> list[int]:
    """The positions of the bits set in value, ascending (byte by byte, through a table of the bits
    of each byte: one comprehension, no loop per bit)."""
    data = value.to_bytes((value.bit_length() + 7) // 8, "little")
    return [(position << 3) + k for position, byte in enumerate(data) if byte for k in _BITS_OF_BYTE[byte]]


class Slot:
    """One clause per branch on one field path: each alternative mapped to the branches (bits)
    whose clause holds it, so that ``satisfied(values)`` is a few map lookups per value."""

    def __init__(self, path_id: int) -> None:
        self.path_id = path_id
        self._bits: dict[tuple[Any, ...], list[int]] = {}  # (table, key) -> bits, until finalize
        self._tests: dict[Any, tuple[Test, list[int]]] = {}

    def add(self, clause: Clause, bit: int) -> None:
        self._bits.setdefault(("mentioned", None), []).append(bit)
        buts = sum(1 for alt in clause.alternatives if alt.kind is Kind.ANYTHING_BUT)
        for alt in clause.alternatives:
            for table, key in _entries(alt, buts):
                if table in ("test", "wild_prefix", "wild_suffix"):
                    # A test run once per value for every branch holding it; a wildcard's only when
                    # the value has its literal head (or tail).
                    assert alt.test is not None
                    self._tests.setdefault((table, key), (alt.test, []))[1].append(bit)
                else:
                    self._bits.setdefault((table, key), []).append(bit)

    def finalize(self, everything: int) -> None:
        tables: dict[str, dict[Any, int]] = {}
        for (table, key), bits in self._bits.items():
            tables.setdefault(table, {})[key] = mask(bits)
        self.mentioned, self.exact_null, self.exists, self.absent, self.but_all = (
            tables.get(name, {}).get(None, 0) for name in ("mentioned", "exact_null", "exists", "absent", "but_all")
        )
        self.others = everything & ~self.mentioned  # branches with no clause here: unaffected by this path
        self.exact_str = tables.get("exact_str", {})
        self.exact_num = tables.get("exact_num", {})
        self.exact_bool = tables.get("exact_bool", {})
        self.eqic = tables.get("eqic", {})
        self.but_str = tables.get("but_str", {})
        self.but_num = tables.get("but_num", {})
        self.affixes = tuple(
            (name, table, tuple(sorted({len(k) for k in table})))
            for name in ("prefix", "suffix", "prefix_ic", "suffix_ic")
            if (table := tables.get(name))
        )
        self.cidr = tables.get("cidr", {})
        self.cidr_lengths = tuple(sorted({(version, length) for version, length, _ in self.cidr}))
        self.ranges = NumericTable(tables["numeric"], _union) if "numeric" in tables else None
        tests: dict[str, list[tuple[Any, tuple[Test, int]]]] = {}
        for (table, key), (test, bits) in self._tests.items():
            tests.setdefault(table, []).append((key, (test, mask(bits))))
        self.tests = tuple(t for _, t in tests.get("test", []))
        self.wildcards = tuple(
            (name == "wild_prefix", grouped, tuple(sorted({len(affix) for affix in grouped})))
            for name in ("wild_prefix", "wild_suffix")
            if (grouped := _group(tests.get(name, [])))
        )
        self.folds = any(name.endswith("_ic") for name, _, _ in self.affixes) or bool(self.eqic)
        del self._bits, self._tests

    def satisfied(self, values: list[Any]) -> int:
        """The branches whose clause on this path the values satisfy (any value, any alternative)."""
        if not values:
            return self.absent
        hits = self.exists
        for value in values:
            if value.__class__ is str:
                hits |= self.exact_str.get(value, 0) | self._string(value)
            elif value.__class__ is bool:
                hits |= self.exact_bool.get(value, 0) | self.but_all
            elif value is None:
                hits |= self.exact_null | self.but_all
            elif isinstance(value, (int, float)):
                try:
                    number = float(value)
                except OverflowError:  # an integer too large for a float: no pattern's number (parse.as_number)
                    hits |= self.but_all
                else:
                    hits |= self.exact_num.get(number, 0)
                    if self.ranges is not None:
                        for bits in self.ranges.segment(number):
                            hits |= bits
                    if self.but_all:
                        hits |= self.but_all & ~self.but_num.get(number, 0)
            for test, bits in self.tests:
                if test(value):
                    hits |= bits
        return hits

    def _string(self, value: str) -> int:
        hits = 0
        if self.folds:
            folded = value.lower()
            hits |= self.eqic.get(folded, 0)
        for name, table, lengths in self.affixes:
            text = folded if name.endswith("_ic") else value
            if name.startswith("prefix"):
                for n in lengths:
                    hits |= table.get(text[:n], 0)
            else:
                size = len(text)
                for n in lengths:
                    if n <= size:
                        hits |= table.get(text[size - n :], 0)
        if self.cidr:
            for key in cidr_keys(value, self.cidr_lengths):
                hits |= self.cidr.get(key, 0)
        for is_prefix, grouped, lengths in self.wildcards:
            size = len(value)
            for n in lengths:
                if n <= size:
                    for test, bits in grouped.get(value[:n] if is_prefix else value[size - n :], ()):
                        if test(value):
                            hits |= bits
        if self.but_all:
            hits |= self.but_all & ~self.but_str.get(value, 0)
        return hits


def _union(masks: list[int]) -> int:
    """The branches of every range stored in one node of the numeric table."""
    union = 0
    for bits in masks:
        union |= bits
    return union


def _group(tests: list[tuple[Any, tuple[Test, int]]]) -> dict[str, list[tuple[Test, int]]]:
    """Wildcard tests by their literal head (or tail): key (kind, (head, tail, pattern))."""
    grouped: dict[str, list[tuple[Test, int]]] = {}
    for (_, (head, tail, _)), test in tests:
        grouped.setdefault(head or tail, []).append(test)
    return grouped


def _entries(alt: Alternative, buts: int) -> list[tuple[str, Any]]:
    """Where an alternative goes in its slot: (table, key) pairs; ("test", key) for a test run on
    every value, deduplicated by key."""
    kind, key = alt.kind, alt.key
    if kind is Kind.EXACT:
        if isinstance(key, str):
            return [("exact_str", key)]
        if isinstance(key, bool):
            return [("exact_bool", key)]
        return [("exact_null", None)] if key is None else [("exact_num", float(key))]
    if kind is Kind.EQUALS_IGNORE_CASE:
        return [("eqic", key)]
    if kind in _AFFIXES:
        return [(_AFFIXES[kind], key)]
    if kind is Kind.CIDR:
        return [("cidr", key)]  # parse.cidr_key
    if kind is Kind.NUMERIC:
        return [("numeric", alt.bounds)]
    if kind is Kind.EXISTS:
        return [("exists", None)]
    if kind is Kind.ABSENT:
        return [("absent", None)]
    if kind is Kind.WILDCARD and key[2].count("*") == 1 and "\\" not in key[2] and not (key[0] and key[1]):
        # "head*" and "*tail": exactly a prefix or a suffix.
        return [("prefix", key[0])] if key[0] else [("suffix", key[1])]
    if kind is Kind.WILDCARD and (key[0] or key[1]):
        return [("wild_prefix" if key[0] else "wild_suffix", (kind, key))]
    if kind is Kind.ANYTHING_BUT and buts == 1 and key[0] == "values":
        # Inverted: each listed value names the branches it violates. With two anything-but in one
        # clause a branch is violated only by a value both exclude: those are tested instead.
        _, strings, numbers = key
        return [("but_all", None), *(("but_str", s) for s in strings), *(("but_num", n) for n in numbers)]
    return [("test", (kind, key))]


_AFFIXES = {Kind.PREFIX: "prefix", Kind.SUFFIX: "suffix", Kind.PREFIX_IGNORE_CASE: "prefix_ic", Kind.SUFFIX_IGNORE_CASE: "suffix_ic"}


class Bitsets:
    """A rule set's branches as bitsets: ``match`` gives the ids of the rules the event satisfies."""

    def __init__(self, branches: Sequence[tuple[int, Sequence[tuple[int, Clause]], Any]], rule_ids: Sequence[str]) -> None:
        """``branches``: (rule, [(path id, clause)], plan or None), in rule order (bit k is branch
        k); ``rule_ids``: the id of each rule."""
        self.ids = [rule_ids[rule] for rule, _, _ in branches]  # by bit
        self.one_branch_each = len(set(self.ids)) == len(self.ids)
        everything = (1 << len(branches)) - 1
        slots: dict[tuple[int, int], Slot] = {}
        for bit, (_, clauses, _) in enumerate(branches):
            seen: dict[int, int] = {}
            for path_id, clause in clauses:
                nth = seen[path_id] = seen.get(path_id, -1) + 1
                slots.setdefault((path_id, nth), Slot(path_id)).add(clause, bit)
        for slot in slots.values():
            slot.finalize(everything)
        self.slots = tuple(slots.values())
        self.everything = everything
        self.plans = {bit: plan for bit, (_, _, plan) in enumerate(branches) if plan is not None}
        self.planned = mask(list(self.plans))

    def match(self, values: list[list[Any]], event: Any, arrays: bool) -> list[str]:
        """The ids of the matching rules, in rule order: ``values`` as ``match.PathTree`` collects
        them, ``arrays`` whether the walk went through an array of objects."""
        result = self.everything
        if arrays and self.planned:
            # Branches whose fields may share an array of objects are decided on the event's structure
            # (consistency.consistent); the flattened values only narrow them, with a clause that may
            # be satisfied by absence in one element (exists: false) let through.
            relaxed = self.planned
            for slot in self.slots:
                hits = slot.satisfied(values[slot.path_id])
                result &= hits | slot.others
                relaxed &= hits | slot.others | slot.absent
            result &= ~self.planned
            for bit in set_bits(relaxed):
                if consistent(event, self.plans[bit]):
                    result |= 1 << bit
        else:
            for slot in self.slots:
                result &= slot.satisfied(values[slot.path_id]) | slot.others
                if not result:
                    return []
        ids = self.ids
        found = [ids[bit] for bit in set_bits(result)]
        return found if self.one_branch_each else list(dict.fromkeys(found))  # a rule's branches are adjacent bits
