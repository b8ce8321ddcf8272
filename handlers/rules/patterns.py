"""EventBridge event patterns, compiled into an index so that matching cost does not grow with the
number of rules (the approach of AWS Event Ruler).

A pattern is compiled into branches (``$or`` expanded): a branch is a conjunction of clauses, a
clause is one field path with alternatives (the pattern's value array). Each branch is *anchored*
on its most selective positive clause: exact values go into hash maps, prefixes and suffixes into
maps keyed by the affix (probed once per distinct affix length), numeric ranges into a segment
table searched by bisection, CIDRs into maps per prefix length. Matching an event walks only the
field paths rules mention, probes the index with each value to find candidate branches, and fully
verifies just those candidates. Branches with no positive clause (only ``anything-but`` or
``exists: false``) cannot be anchored and are checked for every event.

Semantics follow the AWS documentation: values in event arrays match if any element matches;
arrays of objects are flattened; string, number, boolean and null never equal one another; numeric
operators apply to JSON numbers only. Wildcards are matched without regular expressions (no
backtracking). Limits protect a shared Lambda from a hostile rule.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

# -- limits ----------------------------------------------------------------------------------------
MAX_PATTERN_BYTES = 8192
MAX_DEPTH = 8
MAX_BRANCHES = 64  # after $or expansion
MAX_CLAUSES = 32  # field paths in one branch
MAX_VALUES = 256  # alternatives across a pattern
MAX_STRING = 512  # length of one string operand
MAX_WILDCARDS = 8  # '*' in one wildcard operand
NUMERIC_LIMIT = 5.0e9  # EventBridge's numeric range

OPERATORS = ("prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "cidr", "exists", "wildcard")


class PatternError(ValueError):
    """An invalid pattern; ``path`` names the offending place, e.g. ``match.user.email_addr[0].prefix``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- wildcard without backtracking -------------------------------------------------------------------


def _wildcard_parts(pattern: str) -> list[str]:
    """Split on unescaped '*', resolving the escapes '\\*' and '\\\\'."""
    parts, current, i = [], [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            current.append(pattern[i + 1])
            i += 2
            continue
        if c == "*":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    """Glob with '*' only: anchored first and last parts, greedy leftmost search in between.

    Leftmost matching of each middle part is optimal for '*'-only globs, so this is linear in the
    value's length per part: no backtracking, whatever the pattern."""
    parts = _wildcard_parts(pattern)
    if len(parts) == 1:
        literal = parts[0]
        return lambda value: value == literal
    first, middle, last = parts[0], parts[1:-1], parts[-1]
    minimum = len(first) + len(last) + sum(len(p) for p in middle)

    def match(value: str) -> bool:
        if len(value) < minimum or not value.startswith(first) or not value.endswith(last):
            return False
        position, end = len(first), len(value) - len(last)
        for part in middle:
            found = value.find(part, position, end)
            if found < 0:
                return False
            position = found + len(part)
        return True

    return match


# -- compiled pattern pieces ------------------------------------------------------------------------


@dataclass
class Alternative:
    """One element of a field's value array."""

    kind: str  # exact | prefix | suffix | prefix_ic | suffix_ic | eqic | numeric | cidr | wildcard | exists | absent | anything_but
    test: Callable[[Any], bool] | None = None  # for value-level kinds
    key: Any = None  # the index key (literal, affix, network, ...)
    bounds: tuple[float, bool, float, bool] | None = None  # numeric: lo, lo inclusive, hi, hi inclusive


@dataclass
class Clause:
    path: tuple[str, ...]
    alternatives: list[Alternative]

    @property
    def anchorable(self) -> bool:
        return all(a.kind not in ("absent", "anything_but") for a in self.alternatives)

    def rank(self) -> int:
        """Lower is more selective: exact values first, 'exists' last."""
        order = {"exact": 0, "eqic": 1, "prefix": 2, "suffix": 2, "prefix_ic": 3, "suffix_ic": 3,
                 "cidr": 4, "wildcard": 5, "numeric": 6, "exists": 9}  # fmt: skip
        return max(order[a.kind] for a in self.alternatives)

    def __post_init__(self) -> None:
        # The most common clause, a list of exact strings, is checked by set membership.
        kinds = {type(a.key) for a in self.alternatives if a.kind == "exact"}
        only_strings = kinds == {str} and all(a.kind == "exact" for a in self.alternatives)
        self.strings = frozenset(a.key for a in self.alternatives) if only_strings else None

    def satisfied(self, values: list[Any]) -> bool:
        strings = self.strings
        if strings is not None:
            for value in values:
                if value.__class__ is str and value in strings:
                    return True
            return False
        for alt in self.alternatives:
            kind = alt.kind
            if kind == "absent":
                if not values:
                    return True
            elif kind == "exists":
                if values:
                    return True
            else:
                test = alt.test
                assert test is not None
                for value in values:
                    if test(value):
                        return True
        return False


def _exact_test(literal: Any) -> Callable[[Any], bool]:
    if isinstance(literal, str):
        return lambda v: isinstance(v, str) and v == literal
    if literal is None:
        return lambda v: v is None
    if isinstance(literal, bool):
        return lambda v: isinstance(v, bool) and v is literal
    number = float(literal)
    return lambda v: _is_number(v) and float(v) == number


def _numeric_test(bounds: tuple[float, bool, float, bool]) -> Callable[[Any], bool]:
    lo, lo_inc, hi, hi_inc = bounds

    def test(v: Any) -> bool:
        if not _is_number(v):
            return False
        x = float(v)
        return (x > lo or (lo_inc and x == lo)) and (x < hi or (hi_inc and x == hi))

    return test


def _cidr_test(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[Any], bool]:
    def test(v: Any) -> bool:
        ip = _ip(v)
        return ip is not None and ip.version == network.version and ip in network

    return test


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


# -- parsing and validation --------------------------------------------------------------------------


class _Budget:
    def __init__(self) -> None:
        self.values = 0


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PatternError(where, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise PatternError(where, f"string longer than {MAX_STRING} characters")
    return value


def _number(value: Any, where: str) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise PatternError(where, f"expected a number, got {json.dumps(value)[:40]}")
    if abs(float(value)) > NUMERIC_LIMIT:
        raise PatternError(where, f"numbers must be between -{NUMERIC_LIMIT:.1e} and {NUMERIC_LIMIT:.1e}")
    return float(value)


def _wildcard(value: Any, where: str) -> str:
    text = _string(value, where)
    if "**" in text.replace("\\*", ""):
        raise PatternError(where, "consecutive '*' are not allowed")
    if len(_wildcard_parts(text)) - 1 > MAX_WILDCARDS:
        raise PatternError(where, f"at most {MAX_WILDCARDS} '*' per wildcard")
    return text


def _parse_numeric(spec: Any, where: str) -> tuple[float, bool, float, bool]:
    if not isinstance(spec, list) or len(spec) not in (2, 4):
        raise PatternError(where, 'expected ["op", number] or [">"|">=", low, "<"|"<=", high]')
    lo, lo_inc, hi, hi_inc = -math.inf, False, math.inf, False
    for i, (op, raw) in enumerate(zip(spec[0::2], spec[1::2])):
        number = _number(raw, f"{where}[{2 * i + 1}]")
        if op == "=":
            if len(spec) != 2:
                raise PatternError(where, "'=' cannot be combined with another bound")
            return number, True, number, True
        if op in (">", ">="):
            if lo != -math.inf:
                raise PatternError(where, "two lower bounds")
            lo, lo_inc = number, op == ">="
        elif op in ("<", "<="):
            if hi != math.inf:
                raise PatternError(where, "two upper bounds")
            hi, hi_inc = number, op == "<="
        else:
            raise PatternError(f"{where}[{2 * i}]", f"unknown numeric operator {json.dumps(op)[:20]}")
    if len(spec) == 4 and lo > hi:
        raise PatternError(where, "the lower bound is above the upper bound")
    return lo, lo_inc, hi, hi_inc


def _parse_alternative(item: Any, where: str, budget: _Budget) -> Alternative:
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise PatternError(where, f"a pattern may hold at most {MAX_VALUES} values")
    if item is None or isinstance(item, (str, bool)) or _is_number(item):
        if isinstance(item, str):
            _string(item, where)
        elif _is_number(item):
            _number(item, where)
        return Alternative("exact", _exact_test(item), key=item)
    if not isinstance(item, dict) or len(item) != 1:
        raise PatternError(where, "expected a value or an object with exactly one operator")
    ((op, arg),) = item.items()
    at = f"{where}.{op}"
    if op in ("prefix", "suffix"):
        if isinstance(arg, dict):
            if set(arg) != {"equals-ignore-case"}:
                raise PatternError(at, 'expected a string or {"equals-ignore-case": string}')
            affix = _string(arg["equals-ignore-case"], f"{at}.equals-ignore-case").lower()
            if op == "prefix":
                return Alternative("prefix_ic", lambda v: isinstance(v, str) and v.lower().startswith(affix), key=affix)
            return Alternative("suffix_ic", lambda v: isinstance(v, str) and v.lower().endswith(affix), key=affix)
        affix = _string(arg, at)
        if op == "prefix":
            return Alternative("prefix", lambda v: isinstance(v, str) and v.startswith(affix), key=affix)
        return Alternative("suffix", lambda v: isinstance(v, str) and v.endswith(affix), key=affix)
    if op == "equals-ignore-case":
        folded = _string(arg, at).lower()
        return Alternative("eqic", lambda v: isinstance(v, str) and v.lower() == folded, key=folded)
    if op == "numeric":
        bounds = _parse_numeric(arg, at)
        return Alternative("numeric", _numeric_test(bounds), bounds=bounds)
    if op == "cidr":
        try:
            network = ipaddress.ip_network(_string(arg, at), strict=False)
        except ValueError:
            raise PatternError(at, f"not a CIDR block: {arg!r:.60}") from None
        return Alternative("cidr", _cidr_test(network), key=network)
    if op == "exists":
        if not isinstance(arg, bool):
            raise PatternError(at, "expected true or false")
        return Alternative("exists" if arg else "absent")
    if op == "wildcard":
        matcher = wildcard_matcher(_wildcard(arg, at))
        parts = _wildcard_parts(arg)
        return Alternative("wildcard", lambda v: isinstance(v, str) and matcher(v), key=(parts[0], parts[-1]))
    if op == "anything-but":
        return Alternative("anything_but", _anything_but(arg, at, budget))
    raise PatternError(at, f"unknown operator; use one of {', '.join(OPERATORS)}")


def _anything_but(arg: Any, where: str, budget: _Budget) -> Callable[[Any], bool]:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError(where, "expected one of prefix, suffix, equals-ignore-case, wildcard")
        ((op, inner),) = arg.items()
        at = f"{where}.{op}"
        if op in ("prefix", "suffix"):
            affix = _string(inner, at)
            if op == "prefix":
                return lambda v: not (isinstance(v, str) and v.startswith(affix))
            return lambda v: not (isinstance(v, str) and v.endswith(affix))
        if op in ("equals-ignore-case", "wildcard"):
            items = inner if isinstance(inner, list) else [inner]
            if not items:
                raise PatternError(at, "expected at least one value")
            budget.values += len(items)
            if op == "equals-ignore-case":
                folded = {_string(s, f"{at}[{i}]").lower() for i, s in enumerate(items)}
                return lambda v: not (isinstance(v, str) and v.lower() in folded)
            matchers = [wildcard_matcher(_wildcard(s, f"{at}[{i}]")) for i, s in enumerate(items)]
            return lambda v: not (isinstance(v, str) and any(m(v) for m in matchers))
        raise PatternError(at, "anything-but takes a value, a list, or prefix/suffix/equals-ignore-case/wildcard")
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise PatternError(where, "expected at least one value")
    budget.values += len(items)
    strings, numbers = set(), set()
    for i, value in enumerate(items):
        if isinstance(value, str):
            strings.add(_string(value, f"{where}[{i}]"))
        elif _is_number(value):
            numbers.add(_number(value, f"{where}[{i}]"))
        else:
            raise PatternError(f"{where}[{i}]", "anything-but values must be strings or numbers")
    return lambda v: not ((isinstance(v, str) and v in strings) or (_is_number(v) and float(v) in numbers))


def _branches(node: Any, where: str, prefix: tuple[str, ...], depth: int, budget: _Budget) -> list[list[Clause]]:
    """The pattern as a disjunction of conjunctions of clauses."""
    if not isinstance(node, dict):
        raise PatternError(where, "a pattern is a JSON object")
    if depth > MAX_DEPTH:
        raise PatternError(where, f"patterns nest at most {MAX_DEPTH} levels")
    result: list[list[Clause]] = [[]]
    for key, value in node.items():
        at = f"{where}.{key}" if where else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 1:
                raise PatternError(at, "$or takes a non-empty array of patterns")
            options: list[list[Clause]] = []
            for i, sub in enumerate(value):
                options.extend(_branches(sub, f"{at}[{i}]", prefix, depth + 1, budget))
        elif isinstance(value, dict):
            if not value:
                raise PatternError(at, "an empty object matches nothing; remove it")
            options = _branches(value, at, prefix + (key,), depth + 1, budget)
        elif isinstance(value, list):
            if not value:
                raise PatternError(at, "empty arrays are not allowed")
            options = [[Clause(prefix + (key,), [_parse_alternative(v, f"{at}[{i}]", budget) for i, v in enumerate(value)])]]
        else:
            raise PatternError(at, f"must be an object or an array, got {json.dumps(value)[:40]}")
        result = [left + right for left in result for right in options]
        if len(result) > MAX_BRANCHES:
            raise PatternError(at, f"$or expands to more than {MAX_BRANCHES} alternatives")
    for clauses in result:
        if len(clauses) > MAX_CLAUSES:
            raise PatternError(where or "match", f"more than {MAX_CLAUSES} fields in one alternative")
    return result


def compile_pattern(pattern: Any, where: str = "match") -> list[list[Clause]]:
    """Validate a pattern and return its branches; raises PatternError naming the bad place."""
    if not isinstance(pattern, dict):
        raise PatternError(where, "a pattern is a JSON object")
    size = len(json.dumps(pattern, separators=(",", ":")).encode("utf-8"))
    if size > MAX_PATTERN_BYTES:
        raise PatternError(where, f"pattern is {size} bytes; the limit is {MAX_PATTERN_BYTES}")
    if not pattern:
        raise PatternError(where, "an empty pattern would match every event; name at least one field")
    return _branches(pattern, where, (), 0, _Budget())


# -- the index ---------------------------------------------------------------------------------------


class _Entry:
    """A branch still to be matched, with the clauses no enclosing anchor has proven yet."""

    __slots__ = ("rule", "clauses")

    def __init__(self, rule: int, clauses: list[tuple[int, Clause]]) -> None:
        self.rule = rule
        self.clauses = clauses  # (path id, clause)


class _Bucket:
    """The entries anchored on one index key. A bucket many entries share (every rule naming
    vendor "Okta") gets a nested level that indexes those entries on their next best clause, so an
    event reaches only the entries whose next clause it satisfies too: a decision tree over the
    rules, in the spirit of Event Ruler's state machine."""

    __slots__ = ("entries", "child")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.child: _Level | None = None


class _PathIndex:
    """Anchors of one field path, at one level."""

    def __init__(self) -> None:
        self.exact_str: dict[str, _Bucket] = {}
        self.exact_num: dict[float, _Bucket] = {}
        self.exact_bool: dict[bool, _Bucket] = {}
        self.exact_null: _Bucket | None = None
        self.eqic: dict[str, _Bucket] = {}
        self.prefix: dict[str, _Bucket] = {}
        self.suffix: dict[str, _Bucket] = {}
        self.prefix_ic: dict[str, _Bucket] = {}
        self.suffix_ic: dict[str, _Bucket] = {}
        self.cidr: dict[tuple[int, int, int], _Bucket] = {}  # (version, prefix length, network int)
        self.scan = _Bucket()  # wildcards with no literal prefix or suffix
        self.exists = _Bucket()
        self.numeric: dict[tuple[float, bool, float, bool], _Bucket] = {}
        self.prefix_lengths: tuple[int, ...] = ()
        self.suffix_lengths: tuple[int, ...] = ()
        self.prefix_ic_lengths: tuple[int, ...] = ()
        self.suffix_ic_lengths: tuple[int, ...] = ()
        self.cidr_lengths: tuple[tuple[int, int], ...] = ()
        self.bounds: list[float] = []
        self.segments: list[tuple[_Bucket, ...]] = []

    def buckets(self) -> Iterable[_Bucket]:
        for table in (self.exact_str, self.exact_num, self.exact_bool, self.eqic, self.prefix, self.suffix,
                      self.prefix_ic, self.suffix_ic, self.cidr, self.numeric):  # fmt: skip
            yield from table.values()
        yield from (b for b in (self.exact_null, self.scan, self.exists) if b is not None)

    def add(self, alt: Alternative, entry: _Entry) -> None:
        kind, key = alt.kind, alt.key
        if kind == "exact":
            if isinstance(key, str):
                table: dict[Any, _Bucket] = self.exact_str
            elif isinstance(key, bool):
                table = self.exact_bool
            elif key is None:
                self.exact_null = self.exact_null or _Bucket()
                self.exact_null.entries.append(entry)
                return
            else:
                table, key = self.exact_num, float(key)
        elif kind in ("eqic", "prefix", "suffix", "prefix_ic", "suffix_ic"):
            table = getattr(self, kind)
        elif kind == "cidr":
            table = self.cidr
            key = (key.version, key.prefixlen, int(key.network_address) >> (key.max_prefixlen - key.prefixlen))
        elif kind == "wildcard":
            head, tail = key
            if not head and not tail:
                self.scan.entries.append(entry)
                return
            table, key = (self.prefix, head) if head else (self.suffix, tail)
        elif kind == "numeric":
            assert alt.bounds is not None
            table, key = self.numeric, alt.bounds
        else:  # exists
            self.exists.entries.append(entry)
            return
        table.setdefault(key, _Bucket()).entries.append(entry)

    def finalize(self) -> None:
        self.prefix_lengths = tuple(sorted({len(k) for k in self.prefix}))
        self.suffix_lengths = tuple(sorted({len(k) for k in self.suffix}))
        self.prefix_ic_lengths = tuple(sorted({len(k) for k in self.prefix_ic}))
        self.suffix_ic_lengths = tuple(sorted({len(k) for k in self.suffix_ic}))
        self.cidr_lengths = tuple(sorted({(v, p) for v, p, _ in self.cidr}))
        if not self.numeric:
            return
        # Numeric ranges -> elementary segments over the distinct bounds b0 < b1 < ...: the open
        # interval before b0, then each point bk followed by the open interval after it.
        points = sorted({x for (lo, _, hi, _) in self.numeric for x in (lo, hi) if math.isfinite(x)})
        self.bounds = points
        probes = [-math.inf if not points else points[0] - 1]
        for i, x in enumerate(points):
            probes.append(x)
            probes.append((x + points[i + 1]) / 2 if i + 1 < len(points) else x + 1)
        self.segments = [tuple(b for bounds, b in self.numeric.items() if _numeric_test(bounds)(probe)) for probe in probes]

    def probe(self, value: Any, hit: list[_Bucket]) -> None:
        """Collect the buckets whose key this value satisfies."""
        if isinstance(value, str):
            bucket = self.exact_str.get(value)
            if bucket is not None:
                hit.append(bucket)
            if self.eqic or self.prefix_ic or self.suffix_ic:
                folded = value.lower()
                bucket = self.eqic.get(folded)
                if bucket is not None:
                    hit.append(bucket)
                for n in self.prefix_ic_lengths:
                    bucket = self.prefix_ic.get(folded[:n])
                    if bucket is not None:
                        hit.append(bucket)
                for n in self.suffix_ic_lengths:
                    if n <= len(folded):
                        bucket = self.suffix_ic.get(folded[len(folded) - n :])
                        if bucket is not None:
                            hit.append(bucket)
            for n in self.prefix_lengths:
                bucket = self.prefix.get(value[:n])
                if bucket is not None:
                    hit.append(bucket)
            for n in self.suffix_lengths:
                if n <= len(value):
                    bucket = self.suffix.get(value[len(value) - n :])
                    if bucket is not None:
                        hit.append(bucket)
            if self.cidr:
                ip = _ip(value)
                if ip is not None:
                    as_int, bits = int(ip), ip.max_prefixlen
                    for version, length in self.cidr_lengths:
                        if version == ip.version:
                            bucket = self.cidr.get((version, length, as_int >> (bits - length)))
                            if bucket is not None:
                                hit.append(bucket)
            if self.scan.entries or self.scan.child:
                hit.append(self.scan)
        elif isinstance(value, bool):
            bucket = self.exact_bool.get(value)
            if bucket is not None:
                hit.append(bucket)
        elif value is None:
            if self.exact_null is not None:
                hit.append(self.exact_null)
        elif isinstance(value, (int, float)):
            number = float(value)
            bucket = self.exact_num.get(number)
            if bucket is not None:
                hit.append(bucket)
            if self.segments:
                i = bisect.bisect_left(self.bounds, number)
                # segment 0 is (-inf, b0); 2k+1 is the point bk; 2k+2 is (bk, bk+1)
                hit.extend(self.segments[2 * i + 1 if i < len(self.bounds) and self.bounds[i] == number else 2 * i])


NEST_ABOVE = 1  # a bucket with more entries than this gets a nested level
MAX_LEVELS = 4


class _Level:
    """Entries indexed on their cheapest positive clause; see _Bucket for the nesting."""

    def __init__(self, entries: list[_Entry], depth: int = 0) -> None:
        self.indexes: dict[int, _PathIndex] = {}
        self.negative: dict[int, list[_Entry]] = {}  # entries that only need the field to exist first
        self.always: list[_Entry] = []
        shared: Counter = Counter(_key(c, a) for e in entries for _, c in e.clauses if c.anchorable for a in c.alternatives)
        for entry in entries:
            anchorable = [(p, c) for p, c in entry.clauses if c.anchorable]
            if not anchorable:
                # Top level only: anchor a purely negative branch on the field its anything-but needs.
                needs = [p for p, c in entry.clauses if all(a.kind == "anything_but" for a in c.alternatives)]
                if needs and depth == 0:
                    self.negative.setdefault(needs[0], []).append(entry)
                else:
                    self.always.append(entry)
                continue
            path_id, anchor = min(anchorable, key=lambda pc: (_cost(pc[1], shared), pc[1].rank()))
            # What is left to prove once the anchor hits (wildcard anchors only looked up an affix).
            rest = entry.clauses if _uncertain(anchor) else [(p, c) for p, c in entry.clauses if c is not anchor]
            narrowed = _Entry(entry.rule, rest)
            index = self.indexes.setdefault(path_id, _PathIndex())
            for alt in anchor.alternatives:
                index.add(alt, narrowed)
        for index in self.indexes.values():
            index.finalize()
            if depth + 1 < MAX_LEVELS:
                for bucket in index.buckets():
                    if len(bucket.entries) > NEST_ABOVE and any(c.anchorable for e in bucket.entries for _, c in e.clauses):
                        bucket.child = _Level(bucket.entries, depth + 1)
                        bucket.entries = []

    def collect(self, values: list[list[Any]], candidates: set[_Entry]) -> None:
        candidates.update(self.always)
        hit: list[_Bucket] = []
        for path_id, index in self.indexes.items():
            found = values[path_id]
            if found:
                if index.exists.entries or index.exists.child:
                    hit.append(index.exists)
                for value in found:
                    index.probe(value, hit)
        for path_id, entries in self.negative.items():
            if values[path_id]:
                candidates.update(entries)
        seen: set[int] = set()
        for bucket in hit:
            if id(bucket) in seen:
                continue
            seen.add(id(bucket))
            candidates.update(bucket.entries)
            if bucket.child is not None:
                bucket.child.collect(values, candidates)


class _PathTree:
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


class Matcher:
    """Compiled rules: ``match(event)`` returns the ids of the rules whose pattern matches."""

    def __init__(self, rule_ids: list[str], patterns: list[list[list[Clause]]]) -> None:
        self.rule_ids = rule_ids
        paths = sorted({c.path for branches in patterns for clauses in branches for c in clauses})
        self.tree = _PathTree(paths)
        ids = self.tree.ids
        entries = [_Entry(rule, [(ids[c.path], c) for c in clauses]) for rule, branches in enumerate(patterns) for clauses in branches]
        self.root = _Level(entries)

    def match(self, event: dict[str, Any]) -> list[str]:
        values = self.tree.collect(event)
        candidates: set[_Entry] = set()
        self.root.collect(values, candidates)
        matched: set[int] = set()
        for entry in candidates:
            if entry.rule not in matched and all(clause.satisfied(values[path_id]) for path_id, clause in entry.clauses):
                matched.add(entry.rule)
        ids = self.rule_ids
        return [ids[r] for r in sorted(matched)]

    def __len__(self) -> int:
        return len(self.rule_ids)


_KIND_COST = {"exact": 1, "eqic": 1, "prefix": 2, "suffix": 2, "prefix_ic": 2, "suffix_ic": 2, "cidr": 2,
              "wildcard": 3, "numeric": 4, "exists": 50}  # fmt: skip


def _key(clause: Clause, alt: Alternative) -> tuple[Any, ...]:
    return (clause.path, alt.kind, alt.bounds if alt.kind == "numeric" else str(alt.key))


def _cost(clause: Clause, shared: Counter) -> int:
    """Expected candidates from anchoring on this clause: entries sharing its keys, by operator."""
    return sum(shared[_key(clause, a)] * _KIND_COST[a.kind] for a in clause.alternatives)


def _uncertain(clause: Clause) -> bool:
    """An anchor hit proves the clause, except for wildcards (only their affix was looked up)."""
    return any(a.kind == "wildcard" for a in clause.alternatives)
