"""The index: each branch anchored on its most selective positive clause, in hash maps, affix
maps, numeric segment tables and CIDR maps per field path, with nested levels where many branches
share a key (see ``Bucket``)."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any, Callable, Iterable

from handlers.rules.matcher.operators import Kind
from handlers.rules.matcher.parse import Alternative, Clause, cidr_keys


class Entry:
    """A branch still to be matched, with the clauses no enclosing anchor has proven yet.

    ``copies``: in how many buckets of its level the branch is, the product of the key counts of
    the anchors that placed it (an anchor of k values puts it in k buckets). A nested level indexes
    a bucket's entries again, so without a bound a branch of four 64-value clauses would be indexed
    64⁴ times (16.7 million entries for two such rules); an entry nests only while its copies stay
    within ``MAX_COPIES`` (see ``Level``)."""

    __slots__ = ("rule", "clauses", "copies", "plan")

    def __init__(self, rule: int, clauses: list[tuple[int, Clause]], copies: int = 1, plan: Any = None) -> None:
        self.rule = rule
        self.clauses = clauses  # (path id, clause)
        self.copies = copies
        # The whole branch, for array consistency (match.Plan), when two of its fields can share an
        # array of objects; None otherwise. Anchors never drop clauses from it.
        self.plan = plan


class Bucket:
    """The entries anchored on one index key. A bucket many entries share (every rule naming
    vendor "Okta") gets a nested level that indexes those entries on their next best clause, so an
    event reaches only the entries whose next clause it satisfies too: a decision tree over the
    rules, in the spirit of Event Ruler's state machine."""

    __slots__ = ("entries", "child")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.child: Level | None = None


class PathIndex:
    """Anchors of one field path, at one level."""

    def __init__(self) -> None:
        self.exact_str: dict[str, Bucket] = {}
        self.exact_num: dict[float, Bucket] = {}
        self.exact_bool: dict[bool, Bucket] = {}
        self.exact_null: Bucket | None = None
        self.eqic: dict[str, Bucket] = {}
        self.prefix: dict[str, Bucket] = {}
        self.suffix: dict[str, Bucket] = {}
        self.prefix_ic: dict[str, Bucket] = {}
        self.suffix_ic: dict[str, Bucket] = {}
        self.cidr: dict[tuple[int, int, int], Bucket] = {}  # (version, prefix length, network int)
        self.scan = Bucket()  # wildcards with no literal prefix or suffix
        self.exists = Bucket()
        self.numeric: dict[tuple[float, bool, float, bool], Bucket] = {}
        self.ranges: NumericTable | None = None
        self.prefix_lengths: tuple[int, ...] = ()
        self.suffix_lengths: tuple[int, ...] = ()
        self.prefix_ic_lengths: tuple[int, ...] = ()
        self.suffix_ic_lengths: tuple[int, ...] = ()
        self.cidr_lengths: tuple[tuple[int, int], ...] = ()
        self.existing: Bucket | None = None
        self.written: Callable[[str, list[Bucket]], None] | None = None  # the string probe, once written

    def buckets(self) -> Iterable[Bucket]:
        for table in (self.exact_str, self.exact_num, self.exact_bool, self.eqic, self.prefix, self.suffix,
                      self.prefix_ic, self.suffix_ic, self.cidr, self.numeric):  # fmt: skip
            yield from table.values()
        yield from (b for b in (self.exact_null, self.scan, self.exists) if b is not None)

    def add(self, alt: Alternative, entry: Entry) -> None:
        kind, key = alt.kind, alt.key
        if kind is Kind.EXACT:
            if isinstance(key, str):
                table: dict[Any, Bucket] = self.exact_str
            elif isinstance(key, bool):
                table = self.exact_bool
            elif key is None:
                self.exact_null = self.exact_null or Bucket()
                self.exact_null.entries.append(entry)
                return
            else:
                table, key = self.exact_num, float(key)
        elif kind is Kind.EQUALS_IGNORE_CASE:
            table = self.eqic
        elif kind is Kind.PREFIX:
            table = self.prefix
        elif kind is Kind.SUFFIX:
            table = self.suffix
        elif kind is Kind.PREFIX_IGNORE_CASE:
            table = self.prefix_ic
        elif kind is Kind.SUFFIX_IGNORE_CASE:
            table = self.suffix_ic
        elif kind is Kind.CIDR:
            table = self.cidr  # key: parse.cidr_key
        elif kind is Kind.WILDCARD:
            head, tail = key[0], key[1]
            if not head and not tail:
                self.scan.entries.append(entry)
                return
            table, key = (self.prefix, head) if head else (self.suffix, tail)
        elif kind is Kind.NUMERIC:
            assert alt.bounds is not None
            table, key = self.numeric, alt.bounds
        else:
            assert kind is Kind.EXISTS, kind
            self.exists.entries.append(entry)
            return
        table.setdefault(key, Bucket()).entries.append(entry)

    def finalize(self) -> None:
        self.prefix_lengths = tuple(sorted({len(k) for k in self.prefix}))
        self.suffix_lengths = tuple(sorted({len(k) for k in self.suffix}))
        self.prefix_ic_lengths = tuple(sorted({len(k) for k in self.prefix_ic}))
        self.suffix_ic_lengths = tuple(sorted({len(k) for k in self.suffix_ic}))
        self.cidr_lengths = tuple(sorted({(v, p) for v, p, _ in self.cidr}))
        self.ranges = NumericTable(self.numeric) if self.numeric else None
        self.existing = self.exists if self.exists.entries or self.exists.child else None

    def string_probe(self) -> Callable[[str, list[Bucket]], None]:
        """The probe for a string value, written when first needed: a rule set has a path index per
        nested level (1,387 for the bench's 10,000 rules), and most are never reached."""
        if self.written is None:
            self.written = _string_probe(self)
        return self.written

    def probe(self, value: Any, hit: list[Bucket]) -> None:
        """Collect the buckets whose key this value satisfies."""
        if value.__class__ is str:
            self.string_probe()(value, hit)
        elif isinstance(value, bool):
            bucket = self.exact_bool.get(value)
            if bucket is not None:
                hit.append(bucket)
        elif value is None:
            if self.exact_null is not None:
                hit.append(self.exact_null)
        elif isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:  # an integer too large for a float: no pattern's number, in no range (parse.as_number)
                return
            bucket = self.exact_num.get(number)
            if bucket is not None:
                hit.append(bucket)
            if self.ranges is not None:
                self.ranges.probe(number, hit)


def _string_probe(index: PathIndex) -> Callable[[str, list[Bucket]], None]:
    """``index.probe`` for a string, as straight-line code written for this path's tables: one
    lookup per table and affix length it has, the tables and lengths as constants. Probing strings
    is most of the index's time (about six probes an event on ``./build.sh bench``'s selective
    set); a loop over every table, read through attributes, cost a sixth more per probe."""
    tables: dict[str, Any] = {
        "exact": index.exact_str, "eqic": index.eqic, "prefix": index.prefix, "suffix": index.suffix, "prefix_ic": index.prefix_ic,
        "suffix_ic": index.suffix_ic, "cidr": index.cidr, "scan": index.scan, "cidr_keys": cidr_keys, "cidr_lengths": index.cidr_lengths,
    }  # fmt: skip
    lines = ["def probe(value, hit):"]

    def lookup(table: str, key: str, indent: str = "    ") -> None:
        lines.extend([f"{indent}bucket = {table}.get({key})", f"{indent}if bucket is not None:", f"{indent}    hit.append(bucket)"])

    if index.exact_str:
        lookup("exact", "value")
    if index.eqic or index.prefix_ic or index.suffix_ic:
        lines.append("    folded = value.lower()")
        if index.eqic:
            lookup("eqic", "folded")
    for table, text, lengths in (("prefix_ic", "folded", index.prefix_ic_lengths), ("prefix", "value", index.prefix_lengths)):
        for n in lengths:
            lookup(table, f"{text}[:{n}]")
    for table, text, lengths in (("suffix_ic", "folded", index.suffix_ic_lengths), ("suffix", "value", index.suffix_lengths)):
        for n in lengths:
            lines.append(f"    if len({text}) >= {n}:")
            lookup(table, f"{text}[len({text}) - {n} :]", "        ")
    if index.cidr:
        lines.append("    for key in cidr_keys(value, cidr_lengths):")
        lookup("cidr", "key", "        ")
    if index.scan.entries or index.scan.child:
        lines.append("    hit.append(scan)")
    lines.append("    return None")
    exec(compile("\n".join(lines), "<string probe>", "exec"), tables)  # noqa: S102
    probe: Callable[[str, list[Bucket]], None] = tables["probe"]
    return probe


Bounds = tuple[float, bool, float, bool]  # lo, lo inclusive, hi, hi inclusive (parse.Alternative.bounds)


class NumericTable:
    """The numeric ranges of one path: given a number, the buckets of the ranges that hold it.

    The distinct finite bounds b0 < b1 < ... < b(m-1) cut the line into 2m + 1 elementary
    segments: (-inf, b0), [b0], (b0, b1), [b1], ..., [b(m-1)], (b(m-1), +inf); segment 2k + 1 is the
    point bk, segment 2k the open gap before it. A range covers a run of consecutive segments,
    found from its bounds by a dictionary lookup each (open or closed decides whether the point
    is in). The run goes into the nodes of a segment tree that cover it exactly (at most two per
    level of the tree), so the table holds O(n log n) references to buckets however the ranges
    overlap: a list of the ranges active in each segment would hold n² of them for n nested ranges
    (8,000 ranges took minutes to build that way). Building is a sort and O(log n) per range.

    A number finds its segment by bisection and collects the buckets on the path from that leaf to
    the root; ``paths`` holds, per segment, the bucket lists of the non-empty nodes on it (a node with
    none shares its parent's tuple). The nodes covering one range are disjoint, so each range is
    reached at most once, and every list on a path holds at least one bucket: a probe costs
    O(log m + hits). Only finite numbers are in a range (every range has a finite bound, and the
    infinite one is open), as in ``parse.numeric_test``.

    ``combine`` makes a node's value from the payloads stored in it (the buckets here, a list;
    ``bitset.Slot`` ORs its masks into one), and ``segment(number)`` gives the values on the path of
    the number's segment."""

    __slots__ = ("bounds", "paths")

    def __init__(self, ranges: dict[Bounds, Any], combine: Callable[[list[Any]], Any] = list) -> None:
        points = sorted({x for (lo, _, hi, _) in ranges for x in (lo, hi) if math.isfinite(x)})
        rank = {x: k for k, x in enumerate(points)}  # -0.0 finds 0.0: equal floats, equal keys
        count = 2 * len(points) + 1
        leaves = 1 << (count - 1).bit_length()  # a power of two >= count: node n's children are 2n, 2n+1
        nodes: dict[int, list[Any]] = {}
        for (lo, lo_inc, hi, hi_inc), payload in ranges.items():
            first = 0 if lo == -math.inf else 2 * rank[lo] + (1 if lo_inc else 2)
            last = count - 1 if hi == math.inf else 2 * rank[hi] + (1 if hi_inc else 0)
            left, right = first + leaves, last + leaves + 1  # the leaves [left, right), bottom up
            while left < right:
                if left & 1:
                    nodes.setdefault(left, []).append(payload)
                    left += 1
                if right & 1:
                    right -= 1
                    nodes.setdefault(right, []).append(payload)
                left >>= 1
                right >>= 1
        paths: list[tuple[Any, ...]] = [()] * (2 * leaves)
        for node in range(1, 2 * leaves):  # parents before children
            above = paths[node >> 1]
            own = nodes.get(node)
            paths[node] = (*above, combine(own)) if own else above
        self.bounds = points
        self.paths = paths[leaves : leaves + count]

    def segment(self, number: float) -> tuple[Any, ...]:
        """The node values on the path of the number's segment."""
        if not -math.inf < number < math.inf:  # infinities and NaN are in no range
            return ()
        bounds = self.bounds
        i = bisect.bisect_left(bounds, number)
        return self.paths[2 * i + 1 if i < len(bounds) and bounds[i] == number else 2 * i]

    def probe(self, number: float, hit: list[Bucket]) -> None:
        for buckets in self.segment(number):
            hit.extend(buckets)


NEST_ABOVE = 1  # a bucket with more entries than this gets a nested level
MAX_LEVELS = 4
# An entry nests while its branch is in at most this many buckets of its level: nested levels then
# index each branch at most MAX_COPIES * MAX_LEVELS times over, and multi-valued anchors
# (class_uid: [3001, 3002], vendor_name: [Okta, Duo]) still nest a few levels deep.
MAX_COPIES = 16


class Level:
    """Entries indexed on their cheapest positive clause; see Bucket for the nesting."""

    def __init__(self, entries: list[Entry], depth: int = 0) -> None:
        self.indexes: dict[int, PathIndex] = {}
        self.negative: dict[int, list[Entry]] = {}  # entries that only need the field to exist first
        self.always: list[Entry] = []
        shared: Counter[tuple[Any, ...]] = Counter(
            _key(c, a) for e in entries for _, c in e.clauses if c.anchorable for a in c.alternatives
        )
        for entry in entries:
            anchorable = [(p, c) for p, c in entry.clauses if c.anchorable]
            if not anchorable:
                # Top level only: anchor a purely negative branch on the field its anything-but needs.
                needs = [p for p, c in entry.clauses if all(a.kind is Kind.ANYTHING_BUT for a in c.alternatives)]
                if needs and depth == 0:
                    self.negative.setdefault(needs[0], []).append(entry)
                else:
                    self.always.append(entry)
                continue
            path_id, anchor = min(anchorable, key=lambda pc: (_cost(pc[1], shared), pc[1].rank))
            # What is left to prove once the anchor hits (wildcard anchors only looked up an affix).
            rest = entry.clauses if not anchor.certain else [(p, c) for p, c in entry.clauses if c is not anchor]
            narrowed = Entry(entry.rule, rest, entry.copies * len(anchor.alternatives), entry.plan)
            index = self.indexes.setdefault(path_id, PathIndex())
            for alt in anchor.alternatives:
                index.add(alt, narrowed)
        for index in self.indexes.values():
            index.finalize()
            if depth + 1 < MAX_LEVELS:
                for bucket in index.buckets():
                    nesting = [e for e in bucket.entries if e.copies <= MAX_COPIES]
                    if len(nesting) > NEST_ABOVE and any(c.anchorable for e in nesting for _, c in e.clauses):
                        bucket.child = Level(nesting, depth + 1)
                        bucket.entries = [e for e in bucket.entries if e.copies > MAX_COPIES]

    def collect(self, values: list[list[Any]], candidates: set[Entry]) -> None:
        """Adds the entries whose anchors the values satisfy, at this level and the nested ones
        (a loop over the levels reached rather than a call per level: most events reach several)."""
        levels = [self]
        for level in levels:  # grows while it is read: the nested levels of the buckets hit
            if level.always:
                candidates.update(level.always)
            hit: list[Bucket] = []
            for path_id, index in level.indexes.items():
                found = values[path_id]
                if found:
                    if index.existing is not None:
                        hit.append(index.existing)
                    probe_str = index.written or index.string_probe()
                    for value in found:
                        if value.__class__ is str:  # most values: straight to the string probe
                            probe_str(value, hit)
                        else:
                            index.probe(value, hit)
            for path_id, entries in level.negative.items():
                if values[path_id]:
                    candidates.update(entries)
            # A bucket hit twice (two values with one key) is read once.
            for bucket in dict.fromkeys(hit) if len(hit) > 1 else hit:
                if bucket.entries:
                    candidates.update(bucket.entries)
                if bucket.child is not None:
                    levels.append(bucket.child)


def _key(clause: Clause, alt: Alternative) -> tuple[Any, ...]:
    """What the branches anchored on this alternative share."""
    return (clause.path, alt.kind.label, alt.bounds if alt.kind is Kind.NUMERIC else str(alt.key))


def _cost(clause: Clause, shared: Counter[tuple[Any, ...]]) -> int:
    """Expected candidates from anchoring on this clause: branches sharing its keys, weighted by operator."""
    cost = 0
    for alt in clause.alternatives:
        anchor = alt.kind.anchor
        assert anchor is not None, "only anchorable clauses are costed"
        cost += shared[_key(clause, alt)] * anchor.cost
    return cost
