"""Pattern validation and parsing: a pattern becomes branches (``$or`` expanded), each a
conjunction of clauses, each clause one field path with its alternatives (the pattern's value
array). Limits protect a shared Lambda from a hostile rule; wildcards are matched without regular
expressions, so without backtracking."""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from handlers.rules.matcher.operators import Kind

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


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def as_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else, and for an integer too large for a float
    (far outside the range numeric matching covers: it equals no pattern's number, is in no range)."""
    if not is_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


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

    kind: Kind
    test: Callable[[Any], bool] | None = None  # for value-level kinds but exact values, which their clause tests
    key: Any = None  # the index key (literal, affix, network, ...)
    bounds: tuple[float, bool, float, bool] | None = None  # numeric: lo, lo inclusive, hi, hi inclusive


@dataclass
class Clause:
    """One field path and its alternatives (the pattern's value array): satisfied when any is."""

    path: tuple[str, ...]
    alternatives: list[Alternative]
    # Derived once, for matching: the most common clause, a list of exact strings, is checked by set
    # membership; any other by what its alternatives accept (no value, any value, or a test per value).
    strings: frozenset[str] | None = field(init=False, repr=False)
    if_absent: bool = field(init=False, repr=False)
    if_present: bool = field(init=False, repr=False)
    tests: tuple[Callable[[Any], bool], ...] = field(init=False, repr=False)
    # Derived once, for the index (see operators.Anchor); rank and certain only mean something when anchorable.
    anchorable: bool = field(init=False, repr=False)
    rank: int = field(init=False, repr=False)  # of the least selective alternative
    certain: bool = field(init=False, repr=False)  # an anchor hit proves the clause

    def __post_init__(self) -> None:
        only_strings, if_absent, if_present, anchorable, rank, certain = True, False, False, True, 0, True
        tests, exact = [], []
        for alt in self.alternatives:
            kind = alt.kind
            if kind is not Kind.EXACT or alt.key.__class__ is not str:
                only_strings = False
            if alt.test is not None:
                tests.append(alt.test)
            elif kind is Kind.EXACT:
                exact.append(alt.key)
            elif kind is Kind.ABSENT:
                if_absent = True
            elif kind is Kind.EXISTS:
                if_present = True
            anchor = kind.anchor
            if anchor is None:
                anchorable = False
            else:
                rank = max(rank, anchor.rank)
                certain = certain and anchor.certain
        # Only a clause that is not all exact strings needs a test per exact value (a closure each).
        self.strings = frozenset(exact) if only_strings else None
        self.tests = () if only_strings else (*tests, *map(_exact_test, exact))
        self.if_absent, self.if_present = if_absent, if_present
        self.anchorable, self.rank, self.certain = anchorable, rank, certain

    def satisfied(self, values: list[Any]) -> bool:
        strings = self.strings
        if strings is not None:
            for value in values:
                if value.__class__ is str and value in strings:
                    return True
            return False
        if not values:
            return self.if_absent
        if self.if_present:
            return True
        for test in self.tests:
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
    return lambda v: as_number(v) == number


def numeric_test(bounds: tuple[float, bool, float, bool]) -> Callable[[Any], bool]:
    lo, lo_inc, hi, hi_inc = bounds

    def test(v: Any) -> bool:
        x = as_number(v)
        if x is None:
            return False
        return (x > lo or (lo_inc and x == lo)) and (x < hi or (hi_inc and x == hi))

    return test


CidrKey = tuple[int, int, int]  # IP version, prefix length, the network's address >> (bits - prefix length)


def cidr_key(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> CidrKey:
    return network.version, network.prefixlen, int(network.network_address) >> (network.max_prefixlen - network.prefixlen)


def cidr_keys(value: str, lengths: Iterable[tuple[int, int]]) -> list[CidrKey]:
    """The keys of the networks of each (version, prefix length) that hold the address ``value``
    (none when it is not one): equal to a block's ``cidr_key`` exactly when the block holds it."""
    ip = ip_key(value)
    if ip is None:
        return []
    ip_version, as_int, bits = ip
    return [(version, length, as_int >> (bits - length)) for version, length in lengths if version == ip_version]


def _cidr_test(key: CidrKey) -> Callable[[Any], bool]:
    lengths = (key[:2],)
    return lambda v: isinstance(v, str) and key in cidr_keys(v, lengths)


def ip_key(value: str) -> tuple[int, int, int] | None:
    """(version, address as an integer, bits) of a string ``ip_address`` accepts, else None: what
    the CIDR maps are probed with, for every event. IPv4 goes through the C library's
    ``inet_pton``, which accepts exactly what ``ipaddress`` does (four decimal octets, none above
    255, no leading zero: a property test holds them equal) at a tenth of its cost; anything with a
    colon is left to ``ipaddress`` (``inet_pton`` refuses IPv6 scope ids, which it accepts)."""
    if ":" in value:
        ip = ip_address(value)
        return None if ip is None else (ip.version, int(ip), ip.max_prefixlen)
    if value.count(".") != 3 or not 7 <= len(value) <= 15:
        # Not four octets: most strings probed (hosts, names) are refused here, before the cost of
        # an exception from inet_pton. Every address it accepts passes this test.
        return None
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big"), 32
    except (OSError, ValueError):  # not an address; ValueError: an embedded NUL or a lone surrogate
        return None


def ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


# -- parsing and validation --------------------------------------------------------------------------


class _Budget:
    """What parsing one pattern carries along: the values counted so far, and whether the patterns
    EventBridge refuses are refused (``parse_pattern``'s ``strict``)."""

    def __init__(self, strict: bool = True) -> None:
        self.values = 0
        self.strict = strict


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PatternError(where, f"expected a string, got {type(value).__name__}")
    if len(value) > MAX_STRING:
        raise PatternError(where, f"string longer than {MAX_STRING} characters")
    return value


def _number(value: Any, where: str) -> float:
    if not is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise PatternError(where, f"expected a number, got {json.dumps(value)[:40]}")
    number = as_number(value)  # None: an integer too large for a float
    if number is None or abs(number) > NUMERIC_LIMIT:
        raise PatternError(where, f"numbers must be between -{NUMERIC_LIMIT:.1e} and {NUMERIC_LIMIT:.1e}")
    return number


def _wildcard(value: Any, where: str) -> str:
    text = _string(value, where)
    if "**" in text.replace("\\*", ""):
        raise PatternError(where, "consecutive '*' are not allowed")
    if len(_wildcard_parts(text)) - 1 > MAX_WILDCARDS:
        raise PatternError(where, f"at most {MAX_WILDCARDS} '*' per wildcard")
    return text


def _parse_numeric(spec: Any, where: str, strict: bool = True) -> tuple[float, bool, float, bool]:
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
    if len(spec) == 4 and lo == hi and strict:  # Event Ruler: Range.between, "Bottom must be less than top"
        raise PatternError(
            where, f'the lower and upper bounds are equal, which EventBridge refuses; for that one number use ["=", {json.dumps(spec[1])}]'
        )
    return lo, lo_inc, hi, hi_inc


def _parse_alternative(item: Any, where: str, budget: _Budget) -> Alternative:
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise PatternError(where, f"a pattern may hold at most {MAX_VALUES} values")
    if item is None or isinstance(item, (str, bool)) or is_number(item):
        if isinstance(item, str):
            _string(item, where)
        elif is_number(item):
            _number(item, where)
        return Alternative(Kind.EXACT, key=item)
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
                return Alternative(Kind.PREFIX_IGNORE_CASE, lambda v: isinstance(v, str) and v.lower().startswith(affix), key=affix)
            return Alternative(Kind.SUFFIX_IGNORE_CASE, lambda v: isinstance(v, str) and v.lower().endswith(affix), key=affix)
        affix = _string(arg, at)
        if op == "prefix":
            return Alternative(Kind.PREFIX, lambda v: isinstance(v, str) and v.startswith(affix), key=affix)
        return Alternative(Kind.SUFFIX, lambda v: isinstance(v, str) and v.endswith(affix), key=affix)
    if op == "equals-ignore-case":
        folded = _string(arg, at).lower()
        return Alternative(Kind.EQUALS_IGNORE_CASE, lambda v: isinstance(v, str) and v.lower() == folded, key=folded)
    if op == "numeric":
        bounds = _parse_numeric(arg, at, budget.strict)
        return Alternative(Kind.NUMERIC, numeric_test(bounds), bounds=bounds)
    if op == "cidr":
        try:
            network = ipaddress.ip_network(_string(arg, at), strict=False)
        except ValueError:
            raise PatternError(at, f"not a CIDR block: {arg!r:.60}") from None
        key = cidr_key(network)
        return Alternative(Kind.CIDR, _cidr_test(key), key=key)
    if op == "exists":
        if not isinstance(arg, bool):
            raise PatternError(at, "expected true or false")
        return Alternative(Kind.EXISTS if arg else Kind.ABSENT)
    if op == "wildcard":
        matcher = wildcard_matcher(_wildcard(arg, at))
        parts = _wildcard_parts(arg)
        return Alternative(Kind.WILDCARD, lambda v: isinstance(v, str) and matcher(v), key=(parts[0], parts[-1], arg))
    if op == "anything-but":
        test, key = _anything_but(arg, at, budget)
        return Alternative(Kind.ANYTHING_BUT, test, key=key)
    raise PatternError(at, f"unknown operator; use one of {', '.join(OPERATORS)}")


def _anything_but(arg: Any, where: str, budget: _Budget) -> tuple[Callable[[Any], bool], tuple[Any, ...]]:
    """The test, and a key that identifies it (equal keys, equal tests): (operator, its operand)
    for a prefix, suffix, equals-ignore-case or wildcard; ("values", strings, numbers) for a list,
    which the bitsets invert (value -> the branches it violates)."""
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError(where, "expected one of prefix, suffix, equals-ignore-case, wildcard")
        ((op, inner),) = arg.items()
        at = f"{where}.{op}"
        key = (op, json.dumps(inner, sort_keys=True))
        if op in ("prefix", "suffix"):
            affix = _string(inner, at)
            if not affix and budget.strict:  # Event Ruler: "Null prefix/suffix not allowed"
                raise PatternError(at, f"an empty {op}, which EventBridge refuses (it would exclude every string)")
            if op == "prefix":
                return (lambda v: not (isinstance(v, str) and v.startswith(affix))), key
            return (lambda v: not (isinstance(v, str) and v.endswith(affix))), key
        if op in ("equals-ignore-case", "wildcard"):
            items = inner if isinstance(inner, list) else [inner]
            if not items:
                raise PatternError(at, "expected at least one value")
            budget.values += len(items)
            if op == "equals-ignore-case":
                folded = {_string(s, f"{at}[{i}]").lower() for i, s in enumerate(items)}
                return (lambda v: not (isinstance(v, str) and v.lower() in folded)), key
            matchers = [wildcard_matcher(_wildcard(s, f"{at}[{i}]")) for i, s in enumerate(items)]
            return (lambda v: not (isinstance(v, str) and any(m(v) for m in matchers))), key
        raise PatternError(at, "anything-but takes a value, a list, or prefix/suffix/equals-ignore-case/wildcard")
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise PatternError(where, "expected at least one value")
    budget.values += len(items)
    strings, numbers = set(), set()
    for i, value in enumerate(items):
        if isinstance(value, str):
            strings.add(_string(value, f"{where}[{i}]"))
        elif is_number(value):
            numbers.add(_number(value, f"{where}[{i}]"))
        else:
            raise PatternError(f"{where}[{i}]", "anything-but values must be strings or numbers")
    if strings and numbers and budget.strict:  # the AWS documentation: "lists that contain only strings, or only numbers"
        raise PatternError(where, "an anything-but list holds strings or numbers, not both: EventBridge refuses a mix")
    return (lambda v: not ((isinstance(v, str) and v in strings) or as_number(v) in numbers)), (
        "values",
        frozenset(strings),
        frozenset(numbers),
    )


def _field_name(key: Any) -> bool:
    """Whether a key can name a field: YAML reads `1:` or `null:` as a number or None, and a
    "\\ud800" escape as a lone surrogate, which no JSON document (the stored rule) can hold."""
    if not isinstance(key, str):
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _branches(node: Any, where: str, prefix: tuple[str, ...], depth: int, budget: _Budget) -> list[list[Clause]]:
    """The pattern as a disjunction of conjunctions of clauses."""
    if not isinstance(node, dict):
        raise PatternError(where, "a pattern is a JSON object")
    if depth > MAX_DEPTH:
        raise PatternError(where, f"patterns nest at most {MAX_DEPTH} levels")
    result: list[list[Clause]] = [[]]
    for key, value in node.items():
        if not _field_name(key):
            raise PatternError(where, f"field names are strings of valid Unicode, got {key!r:.40}")
        at = f"{where}.{key}" if where else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 1:
                raise PatternError(at, "$or takes a non-empty array of patterns")
            if len(value) < 2 and budget.strict:  # Event Ruler: "There must have at least 2 Objects in $or relationship."
                raise PatternError(
                    at, "$or needs at least two patterns (EventBridge refuses one); write the one pattern's fields without $or"
                )
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


@dataclass(frozen=True, eq=False)
class Pattern:
    """A validated pattern: the document it was parsed from, and its branches (``$or`` expanded),
    each a conjunction of clauses. Equal documents give equal patterns; a pattern pickles as its
    document (its tests are closures). ``values``: the values it holds, as counted against
    ``MAX_VALUES`` (an ``anything-but`` list counts each of its values)."""

    source: dict[str, Any]
    branches: Sequence[Sequence[Clause]]
    values: int = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and self.source == other.source

    def __reduce__(self) -> tuple[Callable[..., Pattern], tuple[dict[str, Any], str, bool]]:
        return parse_pattern, (self.source, "match", False)  # it was valid when parsed: read it as it is


def parse_pattern(pattern: Any, where: str = "match", strict: bool = True) -> Pattern:
    """Validate a pattern and parse it; raises PatternError naming the bad place below ``where``.

    ``strict``: also refuse what EventBridge refuses though it has a meaning here (a numeric range
    whose bounds are equal, an anything-but list of strings and numbers, an empty anything-but
    prefix or suffix, an ``$or`` of one pattern). Rules stored before these were refused are read
    with ``strict=False``, and evaluated as they were."""
    if not isinstance(pattern, dict):
        raise PatternError(where, "a pattern is a JSON object")
    try:
        size = len(json.dumps(pattern, separators=(",", ":")).encode("utf-8"))
    except RecursionError:
        raise PatternError(where, f"patterns nest at most {MAX_DEPTH} levels") from None
    except (TypeError, ValueError) as exc:  # what YAML reads besides JSON (a date, binary, a set), or a cycle of YAML aliases
        raise PatternError(where, f"not a JSON document: {exc} (quote dates and times)") from None
    if size > MAX_PATTERN_BYTES:
        raise PatternError(where, f"pattern is {size} bytes; the limit is {MAX_PATTERN_BYTES}")
    if not pattern:
        raise PatternError(where, "an empty pattern would match every event; name at least one field")
    budget = _Budget(strict)
    branches = _branches(pattern, where, (), 0, budget)
    return Pattern(pattern, branches, budget.values)
