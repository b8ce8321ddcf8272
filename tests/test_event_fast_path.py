"""The fast path of event validation (``events.event_json``) against the reference (the pydantic model:
``NormalizedEvent.bounded`` and ``to_json``): the same JSON, uid and time for every event the model
accepts, the same ValidationError for every event it rejects, the same cut for every event it cuts.

Every guarantee the model gives is listed in ``GUARANTEES`` with hostile values that break it; the
property tests mutate the repository's examples (the events their records map to, before
validation) at random paths with hostile values, and normalize every example file both ways.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Iterator

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from emulator.stack import EXAMPLES
from handlers import events, ingest
from handlers.events import MAX_LIST, MAX_STRING, NormalizedEvent, event_json
from handlers.ingest import normalize_payload

TENANT, RECEIVED = "acme", 1_773_300_000_000
_FILES = [p for p in sorted(EXAMPLES.glob("*/*")) if p.name != "INDEX.md"]


def reference(data: dict[str, Any]) -> tuple[str, str, int]:
    """What normalization did before the fast path: build the model, dump it."""
    model = NormalizedEvent.bounded(data)
    return model.to_json(), model.uid, model.time


def outcome(function: Any, data: Any) -> Any:
    """A function's answer for an event: its result, or the errors it raised (what ingest reports)."""
    try:
        return function(copy.deepcopy(data))
    except ValidationError as exc:
        return ("invalid", [(e["type"], e["loc"], e["msg"]) for e in exc.errors()])


def assert_same(data: Any) -> Any:
    fast, slow = outcome(event_json, data), outcome(reference, data)
    assert fast == slow
    return fast


def _mapped_events() -> list[dict[str, Any]]:
    """The dicts the vendors map the examples' records to, before validation."""
    seen: list[dict[str, Any]] = []
    real = ingest.event_json

    def record(data: dict[str, Any]) -> tuple[str, str, int]:
        seen.append(copy.deepcopy(data))
        return real(data)

    ingest.event_json = record
    try:
        for path in _FILES:
            normalize_payload(path.read_text(encoding="utf-8"), path.parent.name, TENANT, RECEIVED)
    finally:
        ingest.event_json = real
    return seen


MAPPED = _mapped_events()
FULL = max(MAPPED, key=lambda e: len(str(e)))  # the example event with the most groups


def test_the_examples_map_to_events_and_take_the_fast_path():
    assert len(MAPPED) >= 80
    for data in MAPPED:
        json_text = assert_same(data)[0]
        if '"truncated":true' not in json_text:
            events._EVENT_PLAN(data)  # no fallback: an event the model takes unchanged never builds the model


@pytest.mark.parametrize("path", _FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_file_normalizes_the_same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch):
    body = path.read_text(encoding="utf-8")
    for source in (path.parent.name, "auto"):
        fast = normalize_payload(body, source, TENANT, RECEIVED)
        with monkeypatch.context() as patched:
            patched.setattr(ingest, "event_json", reference)
            slow = normalize_payload(body, source, TENANT, RECEIVED)
        assert fast == slow


# -- every guarantee of the model, broken ------------------------------------------------------------


def _with(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``dotted`` set (created along the way), or deleted for DELETE."""
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    here = out
    for key in parents:
        here = here.setdefault(key, {}) if not isinstance(here, list) else here[int(key)]
    if value is DELETE:
        here.pop(last, None)
    elif isinstance(here, list):
        here[int(last)] = value
    else:
        here[last] = value
    return out


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


class _S(str):
    pass


class _I(int):
    pass


def _deep(depth: int, kind: str) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


DELETE = _Delete()
NAN, INF = float("nan"), float("inf")
WRONG_FOR_STRING = [1, 1.5, True, NAN, INF, [], ["x"], {}, {"a": 1}, b"bytes", _deep(200, "list"), _deep(200, "dict")]
WRONG_FOR_INT = ["1", 1.0, 1.5, True, False, NAN, INF, -INF, [], {}, -(2**64)]
HUGE = ["a" * (MAX_STRING + 1), "é" * 100_000, "x\udcff", "\ud800"]
# (the guarantee, the field it is about, values that break it)
GUARANTEES: list[tuple[str, str, list[Any]]] = [
    ("uid: 32 lowercase hex", "uid", ["A" * 32, "a" * 31, "a" * 33, "a" * 32 + "\n", "g" * 32, 1, None, DELETE]),
    ("time: an int >= 0", "time", [-1, *WRONG_FOR_INT, None, DELETE]),
    ("time_dt: a string <= 512", "time_dt", [*WRONG_FOR_STRING, *HUGE, None, DELETE]),
    ("class_uid: an OCSF class coachflow emits", "class_uid", [1, 9999, *WRONG_FOR_INT, DELETE]),
    ("type_uid = class_uid * 100 + activity_id", "type_uid", [0, 200402, *WRONG_FOR_INT]),
    ("activity_id: 0..99", "activity_id", [-1, 100, *WRONG_FOR_INT]),
    ("severity_id: 0..99", "severity_id", [-1, 100, *WRONG_FOR_INT, DELETE]),
    ("status_id: 0..99 or absent", "status_id", [-1, 100, *WRONG_FOR_INT]),
    ("disposition_id: 0..99 or absent", "disposition_id", [-1, 100, *WRONG_FOR_INT]),
    ("severity: a string", "severity", [*WRONG_FOR_STRING, *HUGE, None, DELETE]),
    ("message: a string or absent", "message", [*WRONG_FOR_STRING, *HUGE]),
    ("no unknown field", "observables", [[], "x", None]),
    ("metadata: an object", "metadata", ["x", [], None, DELETE, _deep(100, "dict")]),
    ("metadata.version: 1.3.0", "metadata.version", ["1.2.0", None, 1]),
    ("metadata.tenant_uid: a tenant id", "metadata.tenant_uid", ["ACME", "-acme", "a" * 33, "acme\n", "", None, 1, DELETE]),
    ("metadata.product: vendor_name and name", "metadata.product.name", [None, DELETE, *WRONG_FOR_STRING, *HUGE]),
    ("metadata.truncated: a bool", "metadata.truncated", [1, "true", NAN]),
    ("no unknown field in a group", "metadata.extra", ["x", None]),
    ("user.email_addr: a string", "user.email_addr", [*WRONG_FOR_STRING, *HUGE]),
    ("user: an object", "user", ["x", ["x"], _deep(300, "list")]),
    ("src_endpoint.port: 0..65535", "src_endpoint.port", [-1, 65536, *WRONG_FOR_INT]),
    ("src_endpoint.location.city: a string", "src_endpoint.location.city", [*WRONG_FOR_STRING, *HUGE]),
    ("url.categories: at most 16 strings", "url.categories", [["c"] * (MAX_LIST + 1), [None], [1], "c", ("c",), ["a" * 600]]),
    ("query.hostname: required", "query", [{}, {"type": "A"}, {"hostname": None}, {"hostname": 1}]),
    ("file.size: an int >= 0", "file.size", [-1, *WRONG_FOR_INT]),
    ("file.hashes: at most 16 {algorithm_id 0..99, value}", "file.hashes",
     [[{"algorithm_id": 100, "value": "a"}], [{"algorithm_id": 1}], [{"value": "a"}], [{"algorithm_id": 1, "value": "a"}] * 17, [None], {}]),
    ("process.pid: an int >= 0", "process.pid", [-1, *WRONG_FOR_INT]),
    ("malware: at most 16 {name, classification}", "malware", [[{}], [{"name": None}], [{"name": "m"}] * 17, [{"name": "m", "x": 1}], {"name": "m"}]),
    ("policy.name: required", "policy", [{}, {"uid": "1"}, {"name": None}]),
    ("email.from: a string", "email", [{"from": 1}, {"from_": 1}, {"to": ["a"] * 17}]),
]  # fmt: skip


def _guarantee_cases() -> Iterator[Any]:
    for name, field, values in GUARANTEES:
        for n, value in enumerate(values):
            yield pytest.param(field, value, id=f"{name} [{n}]")


@pytest.mark.parametrize(("field", "value"), list(_guarantee_cases()))
def test_each_guarantee_of_the_model_holds_on_the_fast_path(field: str, value: Any):
    result = assert_same(_with(FULL, field, value))
    assert result[0] == "invalid" or '"truncated":true' in result[0]  # refused, or cut and marked


# Valid values too rare to check on the fast path: the model takes them, as before.
LEFT_TO_THE_MODEL = [("time", 2**64), ("file.size", 2**64), ("message", _S("subclass")), ("activity_id", _I(1)), ("metadata.version", _S("1.3.0")),
                     ("email", {"from_": "a@b.c"}), ("email", {"from": "a@b.c", "from_": "d@e.f"})]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), LEFT_TO_THE_MODEL)
def test_valid_values_the_fast_path_leaves_to_the_model(field: str, value: Any):
    data = _with(FULL, field, value)
    assert_same(data)
    with pytest.raises(events._NeedsModel):
        events._EVENT_PLAN(data)


def test_the_valid_bounds_themselves_take_the_fast_path():
    edges = {"src_endpoint.port": 65535, "activity_id": 99, "type_uid": FULL["class_uid"] * 100 + 99, "message": "m" * MAX_STRING,
             "url.categories": ["c"] * MAX_LIST, "time": 2**62, "metadata.tenant_uid": "a" * 32, "metadata.version": "1.3.0",
             "metadata.truncated": False, "email.from": "a@b.c"}  # fmt: skip
    data = FULL
    for field, value in edges.items():
        data = _with(data, field, value)
    json_text, uid, time_ms = assert_same(data)
    events._EVENT_PLAN(data)
    assert '"truncated":false' in json_text and (uid, time_ms) == (FULL["uid"], 2**62)


CUT = [("message", "m" * (MAX_STRING + 1)), ("metadata.product.name", "é" * 100_000), ("url.categories", ["c"] * (MAX_LIST + 1)),
       ("url.categories", ["a" * 600, "b"]), ("malware", [{"name": "m" * 600}] * 17), ("metadata.truncated", False)]  # fmt: skip


def test_values_too_long_are_cut_without_building_the_model(monkeypatch: pytest.MonkeyPatch):
    data = FULL
    for field, value in CUT:
        data = _with(data, field, value)
        expected = reference(data)
        with monkeypatch.context() as patched:
            patched.setattr(NormalizedEvent, "model_validate", None)  # building the model would fail
            assert event_json(copy.deepcopy(data)) == expected
        assert '"truncated":true' in expected[0]


# Text whose JSON spelling serializers disagree on: every control character, DEL, the JS line
# separators, quotes and backslashes, the slash, non-ASCII and non-BMP characters.
AWKWARD_TEXT = ["".join(map(chr, range(32))), "\x7f", "\u2028\u2029", '"\\/', "é€😀\U0010ffff", "\ufeff\ufffd"]


def test_the_fast_serializer_writes_the_models_bytes_for_awkward_text(monkeypatch: pytest.MonkeyPatch):
    for value in AWKWARD_TEXT:
        data = _with(_with(FULL, "message", value), "url.categories", [value])
        expected = reference(data)
        with monkeypatch.context() as patched:
            patched.setattr(NormalizedEvent, "model_validate", None)  # the fast path, or this fails
            assert event_json(copy.deepcopy(data)) == expected


def test_lone_surrogates_and_nan_are_left_to_the_model():
    for value in ("x\udcff", NAN):
        assert assert_same(_with(FULL, "message", value))[0] == "invalid"


# -- random mutations of the mapped examples ---------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copied: Any = dict(value) if isinstance(value, dict) else list(value)
    if new is DELETE and not rest:
        del copied[head]
    else:
        copied[head] = _put(value[head], rest, new)
    return copied


HOSTILE = st.sampled_from([*WRONG_FOR_STRING, *WRONG_FOR_INT, *HUGE, None, DELETE, -1, 0, 99, 100, 65536, "", "x", ["x"] * 17])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=600),
    lambda inner: (
        st.lists(inner, max_size=18)
        | st.dictionaries(st.sampled_from(["name", "uid", "x", "hostname", "from", "value"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data: Any = draw(st.sampled_from(MAPPED))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        data = _put(data, path, draw(HOSTILE | JSON))
    return data


@seed(11)
@settings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_events_get_the_same_answer_both_ways(data: dict[str, Any]):
    assert_same(data)


# -- what the plans refuse to compile ----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Greater(_Strict):
    n: Annotated[int, Field(gt=0)]


class _Validated(_Strict):
    n: int

    @model_validator(mode="after")
    def _check(self) -> _Validated:
        return self


class _Lax(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int


class _Float(_Strict):
    x: float


@pytest.mark.parametrize("model", [_Greater, _Validated, _Lax, _Float])
def test_a_model_the_plans_cannot_mirror_fails_at_import_not_at_run_time(model: type[BaseModel]):
    with pytest.raises(TypeError, match="fast path"):
        events._Emitter().compile(model)
