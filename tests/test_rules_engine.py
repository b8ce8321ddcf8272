"""The rule engine: EventBridge pattern semantics, agreement with moto's pattern matcher on a
generated corpus, the documented places where moto deviates from AWS, limits, and errors that name
the offending place."""

from __future__ import annotations

import datetime
import json
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

from cli.packs import RuleFileError, load_pack, load_rules, resolve_rule, validate_rule
from cli.rule_tests import run
from handlers.rules import matcher as matcher_package
from handlers.rules.matcher import PatternError, compile_patterns, compile_rules
from handlers.rules.matcher import parse as parse_module
from handlers.rules.model import Rule


def _matches(pattern: dict, event: dict) -> bool:
    """The verdict, the same by both strategies (the index and the bitsets: see matcher.match)."""
    matcher = compile_patterns({"r": pattern})
    verdict = matcher.match_indexed(event)
    assert matcher.match_bitsets(event) == verdict == matcher.match(event), (pattern, event)
    return verdict == ["r"]


def _moto(pattern: dict, event: dict) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


# -- semantics, from the AWS documentation -----------------------------------------------------------

CASES = [
    # (pattern, event, expected)
    ({"a": ["x"]}, {"a": "x"}, True),
    ({"a": ["x"]}, {"a": "X"}, False),  # exact is case-sensitive
    ({"a": ["x", "y"]}, {"a": "y"}, True),  # values in an array are OR
    ({"a": ["x"], "b": ["y"]}, {"a": "x"}, False),  # fields are AND; a missing field does not match
    ({"a": ["x"]}, {"a": ["z", "x"]}, True),  # an event array matches if any element matches
    ({"a": [5]}, {"a": 5.0}, True),  # numbers compare by value
    ({"a": ["5"]}, {"a": 5}, False),  # strings are not numbers
    ({"a": [None]}, {"a": None}, True),
    ({"a": [None]}, {}, False),
    ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
    ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True),  # any element of an array of objects (tests/test_array_consistency.py)
    ({"a": [{"prefix": "ab"}]}, {"a": "abc"}, True),
    ({"a": [{"prefix": {"equals-ignore-case": "AB"}}]}, {"a": "abc"}, True),
    ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
    ({"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"a": "x.png"}, True),
    ({"a": [{"equals-ignore-case": "AbC"}]}, {"a": "aBc"}, True),
    ({"a": [{"anything-but": "x"}]}, {"a": "y"}, True),
    ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
    ({"a": [{"anything-but": "x"}]}, {}, False),  # anything-but needs the field
    ({"a": [{"anything-but": [2, 1]}]}, {"a": 1.0}, False),
    ({"a": [{"anything-but": {"prefix": "ab"}}]}, {"a": "abc"}, False),
    ({"a": [{"anything-but": {"suffix": "bc"}}]}, {"a": "xyz"}, True),
    ({"a": [{"anything-but": {"equals-ignore-case": ["AB"]}}]}, {"a": "ab"}, False),
    ({"a": [{"anything-but": {"wildcard": "*.exe"}}]}, {"a": "x.pdf"}, True),
    ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
    ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 0}, False),
    ({"a": [{"numeric": ["=", 3.5]}]}, {"a": 3.5}, True),
    ({"a": [{"numeric": [">=", 10]}]}, {"a": "11"}, False),  # numeric applies to numbers only
    ({"a": [{"cidr": "10.0.0.0/24"}]}, {"a": "10.0.0.77"}, True),
    ({"a": [{"cidr": "10.0.0.0/24"}]}, {"a": "10.0.1.1"}, False),
    ({"a": [{"cidr": "2001:db8::/32"}]}, {"a": "2001:db8::1"}, True),
    ({"a": [{"exists": True}]}, {"a": None}, True),
    ({"a": [{"exists": False}]}, {}, True),
    ({"a": [{"exists": False}]}, {"a": "x"}, False),
    ({"a": [{"exists": True}]}, {"a": {"b": 1}}, False),  # exists works on leaves only
    ({"a": [{"wildcard": "*.evil.*"}]}, {"a": "www.evil.com"}, True),
    ({"a": [{"wildcard": "a*b*c"}]}, {"a": "abxc"}, True),
    ({"a": [{"wildcard": "a*b*c"}]}, {"a": "acxb"}, False),
    ({"a": [{"wildcard": "a\\*b"}]}, {"a": "a*b"}, True),  # escaped star is literal
    ({"a": [{"wildcard": "a\\*b"}]}, {"a": "axb"}, False),
    ({"$or": [{"a": ["x"]}, {"b": [{"numeric": [">", 1]}]}]}, {"b": 2}, True),
    ({"$or": [{"a": ["x"]}, {"b": ["y"]}], "c": ["z"]}, {"a": "x"}, False),
    ({"a": ["x", {"exists": False}]}, {}, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), CASES)
def test_semantics(pattern: dict, event: dict, expected: bool):
    assert _matches(pattern, event) is expected


def test_many_rules_return_every_match_in_rule_order():
    rules = [
        {"rule_id": "detections", "match": {"class_uid": [2004]}},
        {"rule_id": "high", "match": {"severity_id": [{"numeric": [">=", 4]}]}},
        {"rule_id": "disabled", "match": {"class_uid": [2004]}, "enabled": False},
        {"rule_id": "okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}}},
        {"rule_id": "blocked-or-quarantined", "match": {"$or": [{"disposition_id": [2]}, {"disposition_id": [3]}]}},
    ]
    matcher = compile_rules([Rule.model_validate(r) for r in rules])
    assert matcher.match({"class_uid": 2004, "severity_id": 5, "disposition_id": 3}) == ["detections", "high", "blocked-or-quarantined"]
    assert matcher.match({"class_uid": 3002, "metadata": {"product": {"vendor_name": "Okta"}}}) == ["okta"]
    assert matcher.match({}) == []


def test_negative_only_rules_are_checked_for_every_event():
    matcher = compile_patterns({"no-user": {"user": [{"exists": False}]}, "not-slack": {"app_name": [{"anything-but": "Slack"}]}})
    assert matcher.match({"class_uid": 1}) == ["no-user"]
    assert matcher.match({"app_name": "Teams", "user": {"name": "x"}}) == ["no-user", "not-slack"]  # user is an object, not a leaf
    assert matcher.match({"app_name": "Slack", "user": "bob"}) == []


# -- agreement with moto's EventBridge pattern implementation ----------------------------------------

WORDS = ["alpha", "Alpha", "beta", "alphabet", "x.png", "X.PNG", "evil.com", "www.evil.com", "", "a*b"]
NUMBERS = [0, 1, 2, 5, 5.5, -3, 100, 1e9]
IPS = ["10.0.0.1", "10.0.1.9", "192.168.1.1", "2001:db8::1", "not-an-ip"]

scalars = st.one_of(st.sampled_from(WORDS), st.sampled_from(NUMBERS), st.none())
values = st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3))
# Events avoid what moto is known to handle differently from AWS (recorded in the tests below):
# booleans, arrays of objects, empty arrays and objects, numbers in CIDR fields.
events = st.fixed_dictionaries(
    {},
    optional={
        "s": values,
        "n": st.one_of(st.sampled_from(NUMBERS), st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3)),
        "ip": st.sampled_from(IPS),
        "d": st.fixed_dictionaries({}, optional={"e": values, "f": st.sampled_from(NUMBERS)}),
    },
)

string_ops = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from(WORDS).map(lambda w: {"prefix": w[:3]}),
    st.sampled_from(WORDS).map(lambda w: {"suffix": w[-3:]}),
    st.sampled_from(WORDS).map(lambda w: {"prefix": {"equals-ignore-case": w[:2].upper()}}),
    st.sampled_from(WORDS).map(lambda w: {"suffix": {"equals-ignore-case": w[-2:].upper()}}),
    st.sampled_from(WORDS).map(lambda w: {"equals-ignore-case": w.swapcase()}),
    st.sampled_from(["*", "a*", "*a", "al*b*", "*.png", "*evil*", "a\\*b", "w*.e*"]).map(lambda w: {"wildcard": w}),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(lambda ws: {"anything-but": ws}),
    st.sampled_from(WORDS).map(lambda w: {"anything-but": {"prefix": w[:2] or "z"}}),
    st.sampled_from(WORDS).map(lambda w: {"anything-but": {"suffix": w[-2:] or "z"}}),
    st.sampled_from(WORDS).map(lambda w: {"anything-but": {"equals-ignore-case": [w.upper() or "Z"]}}),
    st.booleans().map(lambda b: {"exists": b}),
    st.none(),
)
numeric_ops = st.one_of(
    st.sampled_from(NUMBERS),
    st.tuples(st.sampled_from([">", ">="]), st.sampled_from(NUMBERS), st.sampled_from(["<", "<="]), st.sampled_from(NUMBERS))
    .filter(lambda t: t[1] < t[3])  # equal bounds: EventBridge refuses the range
    .map(lambda t: {"numeric": list(t)}),
    st.tuples(st.sampled_from([">", ">=", "<", "<=", "="]), st.sampled_from(NUMBERS)).map(lambda t: {"numeric": list(t)}),
    st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=2).map(lambda ns: {"anything-but": ns}),
    st.booleans().map(lambda b: {"exists": b}),
)
cidr_ops = st.sampled_from([{"cidr": "10.0.0.0/24"}, {"cidr": "10.0.0.0/8"}, {"cidr": "2001:db8::/32"}, {"exists": True}])


def _leaf(ops):
    return st.lists(ops, min_size=1, max_size=3)


flat_patterns = st.fixed_dictionaries(
    {},
    optional={
        "s": _leaf(string_ops),
        "n": _leaf(numeric_ops),
        "ip": _leaf(cidr_ops),
        "d": st.fixed_dictionaries({}, optional={"e": _leaf(string_ops), "f": _leaf(numeric_ops)}).filter(bool),
    },  # fmt: skip
).filter(bool)
patterns_strategy = st.one_of(
    flat_patterns,
    st.tuples(flat_patterns, st.lists(flat_patterns, min_size=2, max_size=3)).map(lambda t: {**t[0], "$or": t[1]}),
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns_strategy, event=events)
def test_verdicts_equal_motos_pattern_matcher(pattern: dict, event: dict):
    assert _matches(pattern, event) == _moto(pattern, event), (pattern, event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(patterns_strategy, min_size=1, max_size=30), batch=st.lists(events, min_size=1, max_size=10))
def test_one_compiled_index_of_many_rules_agrees_with_moto_rule_by_rule(rules: list[dict], batch: list[dict]):
    matcher = compile_patterns((f"r{n}", p) for n, p in enumerate(rules))
    for event in batch:
        expected = [f"r{n}" for n, p in enumerate(rules) if _moto(p, event)]
        assert matcher.match_indexed(event) == expected and matcher.match_bitsets(event) == expected


# The walk written for a rule set's paths (match.PathTree.collect_noting_arrays) must collect what
# the generic walk of the tree does, on any JSON: arrays and objects at every level, null where an
# object is expected, and keys that are not identifiers (the written code holds them as literals).
KEYS = st.sampled_from(["a", "b", "c", "a'b", 'q"', "back\\slash", "new\nline", "ü", "", "get"])
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths=st.lists(st.lists(KEYS, min_size=1, max_size=4).map(tuple), min_size=1, max_size=8), event=json_values)
def test_the_written_walk_collects_what_the_generic_walk_does(paths: list[tuple[str, ...]], event):
    from handlers.rules.matcher.match import PathTree

    tree = PathTree(paths)
    assert tree.collect_noting_arrays(event) == tree.walk(event), (paths, event)


def test_a_rule_set_naming_thousands_of_fields_is_walked_without_written_code():
    # Writing the walk costs per field name; past WRITTEN_NODES it would cost more than it saves
    # (a tenant at the complexity budget can name ~4,000 fields: tests/test_compile_time.py).
    from handlers.rules.matcher.match import WRITTEN_NODES, PathTree

    event = {"user": {"f1": "a", "f500": ["b", {"x": 1}]}}
    small, big = PathTree([("user", "f1")]), PathTree([("user", f"f{i}") for i in range(WRITTEN_NODES + 1)])
    assert small.collect_noting_arrays.__name__ == "collect" and big.collect_noting_arrays.__name__ == "walk"
    assert big.collect_noting_arrays(event) == big.walk(event) and big.collect(event)[500] == ["b"]


# Where moto deviates from the AWS documentation we follow AWS; each case is recorded here with
# both verdicts, so a moto upgrade that changes behaviour shows up.
DEVIATIONS = [
    # booleans are not numbers in JSON/EventBridge; Python's True == 1 makes moto match them
    ({"a": [1]}, {"a": True}, False, True),
    ({"a": [{"numeric": [">", 0]}]}, {"a": True}, False, True),
    ({"a": [{"anything-but": [1]}]}, {"a": True}, True, False),
    # AWS flattens arrays of objects; moto does not look inside them
    ({"a": {"b": ["x"]}}, {"a": [{"b": "x"}]}, True, False),
    # CIDR applies to IP address strings; moto also accepts integers
    ({"a": [{"cidr": "0.0.0.0/24"}]}, {"a": 5}, False, True),
    # an empty array has no value to exist; moto treats the key as present
    ({"a": [{"exists": True}]}, {"a": []}, False, True),
]


@pytest.mark.parametrize(("pattern", "event", "ours", "motos"), DEVIATIONS)
def test_recorded_deviations_from_moto(pattern: dict, event: dict, ours: bool, motos: bool):
    assert _matches(pattern, event) is ours
    assert _moto(pattern, event) is motos


# -- limits and errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "message"),
    [
        ({"user": {"email_addr": [{"prefix": 5}]}}, "r1.match.user.email_addr[0].prefix", "expected a string"),
        ({"a": []}, "r1.match.a", "empty arrays"),
        ({"a": "x"}, "r1.match.a", "must be an object or an array"),
        ({"a": [{"numeric": [">", "x"]}]}, "r1.match.a[0].numeric[1]", "expected a number"),
        ({"a": [{"numeric": [">", 1e10]}]}, "r1.match.a[0].numeric[1]", "numbers must be between"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "r1.match.a[0].numeric", "lower bound is above"),
        ({"a": [{"cidr": "10.0.0.0/99"}]}, "r1.match.a[0].cidr", "not a CIDR block"),
        ({"a": [{"wildcard": "a**b"}]}, "r1.match.a[0].wildcard", "consecutive"),
        ({"a": [{"wildcard": "*a*b*c*d*e*f*g*h*i*"}]}, "r1.match.a[0].wildcard", "at most 8"),
        ({"a": [{"regex": "a+"}]}, "r1.match.a[0].regex", "unknown operator"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "r1.match.a[0]", "exactly one operator"),
        ({}, "r1.match", "would match every event"),
        ({"a": ["x" * 600]}, "r1.match.a[0]", "longer than 512"),
        ({"a": [{"exists": "yes"}]}, "r1.match.a[0].exists", "true or false"),
        ({"a": [{"anything-but": [True]}]}, "r1.match.a[0].anything-but[0]", "strings or numbers"),
        # What EventBridge refuses though it would have a meaning here (AWS Event Ruler's JsonRuleCompiler
        # and Range; the AWS documentation's anything-but "lists that contain only strings, or only numbers").
        (
            {"a": [{"numeric": [">=", 5, "<=", 5]}]},
            "r1.match.a[0].numeric",
            'bounds are equal, which EventBridge refuses; for that one number use ["=", 5]',
        ),
        ({"a": [{"numeric": [">", 2.5, "<", 2.5]}]}, "r1.match.a[0].numeric", 'use ["=", 2.5]'),
        ({"a": [{"anything-but": ["x", 1]}]}, "r1.match.a[0].anything-but", "strings or numbers, not both"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "r1.match.a[0].anything-but.prefix", "an empty prefix, which EventBridge refuses"),
        ({"a": [{"anything-but": {"suffix": ""}}]}, "r1.match.a[0].anything-but.suffix", "an empty suffix"),
        ({"a": ["x"], "$or": [{"b": ["y"]}]}, "r1.match.$or", "$or needs at least two patterns"),
    ],
)
def test_invalid_patterns_name_the_offending_place(pattern: dict, path: str, message: str):
    with pytest.raises(PatternError) as error:
        compile_patterns({"r1": pattern})
    assert error.value.path == path
    assert message in error.value.message


def test_limits_protect_a_shared_lambda():
    deep: dict = {"z": ["x"]}
    for _ in range(12):
        deep = {"n": deep}
    with pytest.raises(PatternError, match="nest at most"):
        compile_patterns({"deep": deep})
    explosive = {f"k{i}": [1] for i in range(3)}
    explosive.update({"$or": [{"a": [i]} for i in range(9)]})
    nested = {"$or": [{"b": [i]} for i in range(9)]}
    with pytest.raises(PatternError, match="expands to more than 64"):
        compile_patterns({"boom": {"x": explosive, "y": nested}})
    with pytest.raises(PatternError, match="at most 256 values"):
        compile_patterns({"wide": {"a": list(range(300))}})
    with pytest.raises(PatternError, match="bytes; the limit is"):
        compile_patterns({"big": {f"field{i}": ["v" * 100] for i in range(100)}})


# Found by tests/test_fuzz.py: each of these raised TypeError, RecursionError or OverflowError out of
# Rule.model_validate (a traceback from `./build.sh rules validate`), a TypeError out of compile_rules,
# or validated and then failed `rules push` (no JSON can hold a lone surrogate).
def _nested(depth: int) -> dict:
    pattern: dict = {"a": ["x"]}
    for _ in range(depth):
        pattern = {"a": pattern}
    return pattern


def _cycle() -> dict:
    """What YAML reads for `a: &x [x, *x]`: a list that holds itself."""
    looped: list = ["x"]
    looped.append(looped)
    return {"a": looped}


UNSTORABLE = {  # what YAML's safe_load gives besides JSON -> the message
    "a date": ({"time_dt": [datetime.date(2026, 3, 17)]}, "not a JSON document: Object of type date"),
    "a timestamp": ({"t": [{"anything-but": [datetime.datetime(2026, 3, 17)]}]}, "not a JSON document: Object of type datetime"),
    "binary": ({"t": [b"x"]}, "not a JSON document: Object of type bytes"),
    "a set": ({"t": {"x", "y"}}, "not a JSON document: Object of type set"),
    "nesting past the recursion limit": (_nested(3000), "patterns nest at most 8 levels"),
    "an integer of 400 digits": ({"n": [10**400]}, "n[0]: numbers must be between"),
    "a numeric bound of 400 digits": ({"n": [{"numeric": [">", -(10**400)]}]}, "n[0].numeric[1]: numbers must be between"),
    "anything-but 400 digits": ({"n": [{"anything-but": [10**400]}]}, "n[0].anything-but[0]: numbers must be between"),
    "a number as a field name": ({"a": {1: ["x"], "c": ["y"]}}, "a: field names are strings of valid Unicode, got 1"),
    "null as a field name": ({"a": {None: ["x"]}}, "a: field names are strings of valid Unicode, got None"),
    "a lone surrogate as a field name": ({"\ud800": ["x"]}, "field names are strings of valid Unicode, got '\\ud800'"),
    "a lone surrogate as a value": ({"a": ["\ud800"]}, "cannot be stored as JSON: UnicodeEncodeError"),
    "a YAML alias that contains itself": (_cycle(), "not a JSON document: Circular reference detected"),
}


@pytest.mark.parametrize("case", UNSTORABLE)
def test_a_pattern_no_json_document_can_hold_is_a_validation_error(case: str):
    pattern, message = UNSTORABLE[case]
    with pytest.raises(RuleFileError) as error:
        validate_rule({"rule_id": "r", "match": pattern}, "r.yaml")
    assert message in str(error.value)


@pytest.mark.parametrize(("event", "message"), [({"a": b"\xff"}, "invalid utf-8"), (_cycle(), "Circular reference")])
def test_a_rule_test_event_that_cannot_be_stored_is_a_validation_error(event: dict, message: str):
    test = {"name": "t", "event": event, "expect": "match"}  # YAML !!binary of an invalid UTF-8 byte; an alias in itself
    with pytest.raises(RuleFileError, match=f"cannot be stored as JSON: .*{message}"):
        validate_rule({"rule_id": "r", "match": {"a": ["x"]}, "tests": [test]}, "r.yaml")


def test_a_rule_file_with_a_yaml_date_or_a_huge_integer_is_an_error_not_a_traceback(tmp_path: Path):
    (tmp_path / "date.yaml").write_text("rule_id: r\nmatch:\n  time_dt: [2026-03-17]\n")
    (tmp_path / "huge.json").write_text('{"rule_id": "r", "match": {"n": [' + "9" * 400 + "]}}")
    for name in ("date.yaml", "huge.json"):
        with pytest.raises(RuleFileError, match=rf"{name}(:1)?: rule r: match"):  # YAML gives the rule's line
            load_rules(tmp_path / name)


def test_an_integer_too_large_for_a_float_equals_no_number_and_is_in_no_range():
    matcher = compile_patterns({"exact": {"n": [5]}, "range": {"n": [{"numeric": [">", 0]}]}, "but": {"n": [{"anything-but": [5]}]}})
    for match in (matcher.match_indexed, matcher.match_bitsets):
        for huge in (10**400, -(10**400)):
            assert match({"n": huge}) == ["but"] and match({"n": [huge, 5]}) == ["exact", "range", "but"]


def test_wildcards_never_backtrack():
    # A pattern that sends a backtracking regex engine into exponential time on this input.
    assert not [m for m in Path(matcher_package.__file__).parent.glob("*.py") if "import re" in m.read_text()]
    matcher = compile_patterns({"w": {"a": [{"wildcard": "*a*a*a*a*a*a*a*b"}]}})
    assert matcher.match({"a": "a" * 50_000}) == []
    assert matcher.match({"a": "a" * 50_000 + "b"}) == ["w"]


def test_rule_documents_validate_with_paths():
    with pytest.raises(RuleFileError) as error:
        validate_rule({"rule_id": "x", "match": {"a": [{"prefix": 1}]}, "threshold": {"count": 1, "window": "5q"}}, "acme.yaml: rules[0]")
    text = str(error.value)
    assert "acme.yaml: rules[0]" in text and "match.a[0].prefix: expected a string" in text
    assert "threshold.count" in text and "threshold.window" in text
    rule = validate_rule({"rule_id": "y", "match": {"app_name": ["b"]}, "suppress": {"duration": "2h"}}, "here")
    assert rule.suppress is not None and rule.suppress.duration == 7200 and rule.mode == "active"
    assert rule.actions[0].type == "notify"


def test_a_validated_rule_keeps_its_parsed_pattern_and_compiles_without_parsing_again(monkeypatch: pytest.MonkeyPatch):
    document = {"rule_id": "okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}}, "enabled": True}
    rule = Rule.model_validate(document)
    assert type(rule.match) is dict and rule.match == document["match"] and rule.pattern.source is rule.match

    def parse_again(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(parse_module, "_branches", parse_again)
    event = {"metadata": {"product": {"vendor_name": "Okta"}}}
    assert compile_rules([rule, rule.model_copy(update={"rule_id": "off", "enabled": False})]).match(event) == ["okta"]
    with pytest.raises(AssertionError, match="parsed again"):
        compile_patterns({"okta": document["match"]})


def test_rules_keeping_parsed_patterns_compare_and_pickle_as_documents():
    okta = {"rule_id": "okta", "match": {"metadata": {"product": {"vendor_name": ["Okta"]}}}}
    rule = Rule.model_validate(okta)
    assert rule == Rule.model_validate_json(json.dumps(okta))
    assert rule != Rule.model_validate({**okta, "match": {"metadata": {"product": {"vendor_name": ["Zscaler"]}}}})
    restored = pickle.loads(pickle.dumps(rule))
    assert restored == rule and compile_rules([restored]).match({"metadata": {"product": {"vendor_name": "Okta"}}}) == ["okta"]


def test_rule_tests_check_the_patterns_of_disabled_rules_too():
    rule = Rule.model_validate({"rule_id": "off", "match": {"class_uid": [2004]}, "enabled": False,
                                "tests": [{"name": "a detection", "event": {"class_uid": 2004}, "expect": "match"}]})  # fmt: skip
    assert [(r.actual, r.passed) for r in run([rule])] == [("match", True)]


def test_pack_parameters_and_tenant_overrides(tmp_path: Path):
    pack = {"rules": [{"rule_id": "apps", "params": {"allowed": ["Slack"]},
                       "match": {"app_name": [{"anything-but": {"$param": "allowed"}}]}}]}  # fmt: skip
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "p.json").write_text(json.dumps(pack))
    raw = load_pack(tmp_path / "packs" / "p.json")["apps"]
    default = resolve_rule(raw, "t")
    tuned = resolve_rule(raw, "t", {"params": {"allowed": ["Slack", "Teams"]}, "mode": "shadow"})
    assert default.match == {"app_name": [{"anything-but": ["Slack"]}]}
    assert tuned.match == {"app_name": [{"anything-but": ["Slack", "Teams"]}]} and tuned.mode == "shadow"
    with pytest.raises(RuleFileError, match="cannot override match"):
        resolve_rule(raw, "t", {"match": {"a": ["b"]}})
    with pytest.raises(RuleFileError, match="unknown parameter 'nope'"):
        resolve_rule({"rule_id": "q", "match": {"a": {"$param": "nope"}}}, "t")


OCTETS = ["00", "01", "0", "", "1 ", "+1", "٣"]  # what ipaddress refuses, and a non-ASCII digit


@settings(max_examples=3000, deadline=None)
@given(
    text=st.one_of(
        st.text(alphabet="0123456789.:abcdef%٣\x00 ", max_size=20),
        st.text(max_size=16),
        st.lists(st.integers(0, 300).map(str) | st.sampled_from(OCTETS), min_size=3, max_size=5).map(".".join),
        st.sampled_from(["::ffff:10.0.0.1", "2001:db8::1", "fe80::1%eth0", "1.2.3.4%x", "10.0.0.256", "010.0.0.1"]),
    )
)
def test_the_fast_ip_parse_accepts_exactly_what_ipaddress_does(text: str):
    ip = parse_module.ip_address(text)
    assert parse_module.ip_key(text) == (None if ip is None else (ip.version, int(ip), ip.max_prefixlen))
