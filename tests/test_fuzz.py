"""Property and fuzz tests: hostile versions of real inputs through every stage that takes input
from outside (normalization, batching, rules, templates).

The invariant everywhere: the stage returns (no exception escapes), every raw record ends in exactly
one outcome of the three kinds (a reason for every one that is not normalized), and no input takes
more than a bounded time. ``tests/test_hostile_inputs.py`` holds the hand-written hostile cases and a
first character-level fuzz; this module mutates the examples systematically (every field path, byte
level, line level), and the other stages.

Deterministic and budgeted, so that ``./build.sh test`` can always run it:

- every Hypothesis test has a fixed seed, no example database and an explicit ``max_examples``; the
  sweeps are plain loops over the examples;
- ``deadline=None`` (Hypothesis' deadline measures wall time, which a shared machine stretches);
  instead every call on a hostile input is ``bounded``: its CPU time must stay under
  ``0.5 s + 5 µs per input byte`` (legitimate inputs take a few percent of it at most, a
  catastrophic regex or an exponential walk far more), and a call still running after
  ``HANG_SECONDS`` of wall time fails the case instead of hanging the run;
- quadratic behaviour hides under any fixed bound at the sizes a fuzzer can afford, so
  ``test_cost_grows_linearly`` measures the few shapes that could go quadratic (huge strings, many
  lines, many records, many placeholders) at two sizes and bounds the ratio;
- the whole module adds well under a minute to ``./build.sh test``; each test reports how many
  inputs it ran and the slowest one (``fuzz cases`` in the terminal summary).
"""

from __future__ import annotations

import datetime
import functools
import gc
import json
import math
import random
import re
import signal
import statistics
import string
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from emulator.stack import EXAMPLES
from handlers import batching, notify, vendors
from handlers.events import NormalizedEvent
from handlers.ingest import normalize_payload
from handlers.outcomes import KINDS, IgnoredOutcome, IgnoreReason, NormalizedOutcome, Outcome, RejectedOutcome, RejectReason
from handlers.rules.evaluate import match_record
from handlers.rules.matcher import Matcher, PatternError, compile_patterns, compile_rules
from handlers.rules.matcher.consistency import Plan, consistent
from handlers.rules.model import Rule

SEED = 20260317
TENANT, RECEIVED_MS = "acme", 1_773_300_000_000
FUZZ = settings(
    deadline=None,
    database=None,  # replaying saved failures would make the cases of a run depend on earlier runs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

# -- the bound on one input, and the report of the cases run ----------------------------------------

CPU_BASE_SECONDS = 0.5
CPU_SECONDS_PER_BYTE = 5e-6  # the slowest legitimate shape (a megabyte of "{}" lines: 333,000 records) costs 2.5 µs a byte
HANG_SECONDS = 30.0


class _Hang(BaseException):
    """Raised by the alarm inside a call that does not return: a BaseException, so that the stages'
    own ``except Exception`` guards do not turn it into a rejection."""


@dataclass
class Tally:
    """What one fuzz test ran: inputs checked, Hypothesis examples, and the slowest input."""

    inputs: int = 0
    examples: int = 0
    cpu: list[float] = field(default_factory=list)
    slowest: tuple[float, int | None] = (0.0, None)  # CPU seconds, input bytes
    span: tuple[float, float] | None = None  # wall clock from the first run's start to the last run's end
    note: str = ""  # what else the test has to say

    def record(self, spent: float, size: int | None) -> None:
        self.inputs += 1
        self.cpu.append(spent)
        if spent >= self.slowest[0]:
            self.slowest = (spent, size)

    def line(self) -> str:
        runs = f" in {self.examples} runs" if self.examples > 1 else ""
        seconds = self.span[1] - self.span[0] if self.span else 0.0
        median = statistics.median(self.cpu) if self.cpu else 0.0
        spent, size = self.slowest
        return (f"{self.inputs} inputs{runs}, {seconds:.1f} s; CPU per input: median {median * 1000:.2f} ms, "
                f"slowest {spent * 1000:.1f} ms{f' ({size:,} bytes)' if size is not None else ''}{self.note}")  # fmt: skip


TALLIES: dict[str, Tally] = {}
_active: list[Tally] = []


def fuzz_test(test: Callable[..., None]) -> Callable[..., None]:
    """Counts a test's runs (one per Hypothesis example) and makes its ``bounded`` calls count as its
    inputs. The innermost decorator: it wraps the test itself, below ``@given``."""
    tally = TALLIES.setdefault(test.__name__, Tally())

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        tally.examples += 1
        started = tally.span[0] if tally.span else time.perf_counter()
        _active.append(tally)
        try:
            test(*args, **kwargs)
        finally:
            _active.pop()
            tally.span = (started, time.perf_counter())

    return run


@pytest.fixture(scope="module", autouse=True)
def _report(fuzz_report: dict[str, str]) -> Iterator[None]:
    yield
    for name, tally in TALLIES.items():
        if tally.examples:  # (the tests that ran)
            fuzz_report[f"test_fuzz.py::{name}"] = tally.line()


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


@contextmanager
def bounded(size: int) -> Iterator[None]:
    """One input: counted, its CPU time bounded by its size, and a hang turned into a failure."""
    limit = CPU_BASE_SECONDS + CPU_SECONDS_PER_BYTE * size
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    gc.disable()  # a collection of the whole test process's garbage is not this input's cost
    start = time.thread_time()
    try:
        yield
    except _Hang:
        raise AssertionError(f"no result after {HANG_SECONDS:.0f} s for an input of {size:,} bytes") from None
    finally:
        spent = time.thread_time() - start
        gc.enable()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    _active[-1].record(spent, size)
    assert spent <= limit, f"{spent:.2f} s of CPU for an input of {size:,} bytes (bound {limit:.2f} s)"


# -- the examples, as values to mutate ---------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """An example file: its vendor, its text, and its JSON values (one for a JSON file, one per line
    for newline-delimited JSON; none for a line format)."""

    name: str
    vendor: str
    text: str = field(repr=False)  # (Hypothesis prints the strategies it draws from)
    documents: tuple[Any, ...] | None = field(repr=False)
    ndjson: bool = field(repr=False)

    def serialize(self, documents: list[Any], ensure_ascii: bool = True) -> str:
        # compact, as the C encoder writes it (indent= takes the slow Python one); NaN and Infinity stay raw tokens
        dump = functools.partial(json.dumps, ensure_ascii=ensure_ascii)
        return "\n".join(dump(d) for d in documents) if self.ndjson else dump(documents[0])

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


def load(root: Path) -> list[Example]:
    examples = []
    for path in sorted(root.glob("*/*")):
        if path.suffix not in (".json", ".log"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")  # as the CLI reads files
        documents: tuple[Any, ...] | None
        ndjson = False
        try:
            documents = (json.loads(text),)
        except ValueError:
            try:
                documents, ndjson = tuple(json.loads(line) for line in text.split("\n") if line.strip()), True
            except ValueError:
                documents = None
        examples.append(Example(f"{path.parent.name}/{path.name}", path.parent.name, text, documents, ndjson))
    return examples


EXAMPLE_FILES = load(EXAMPLES)
JSON_EXAMPLES = [e for e in EXAMPLE_FILES if e.documents is not None]
TEXT_EXAMPLES = [e for e in EXAMPLE_FILES if e.documents is None]
NDJSON_EXAMPLES = [e for e in JSON_EXAMPLES if e.ndjson and e.vendor not in vendors.TEXT_VENDORS]
EXAMPLE_EVENTS = [  # the normalized events of the examples: what rules match and templates render
    o.event for e in EXAMPLE_FILES for o in normalize_payload(e.text, e.vendor, TENANT, RECEIVED_MS) if isinstance(o, NormalizedOutcome)
]


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field path of a JSON value (keys and list indexes), the value itself first."""
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*path, index))


_DELETE = object()


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with the value at ``path`` replaced by ``new`` (deleted for ``_DELETE``); copies
    only the containers along the path."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if new is _DELETE and not rest:
            del copy[head]
        else:
            copy[head] = _put(value[head], rest, new)
        return copy
    copy_list = list(value)
    if new is _DELETE and not rest:
        del copy_list[head]
    else:
        copy_list[head] = _put(value[head], rest, new)
    return copy_list


class _Nested(list[Any]):
    """A list nested deeper than repr() can go: it says how deep instead (Hypothesis prints the
    values it draws). JSON encoders and pydantic take it for the list it is."""

    def __repr__(self) -> str:
        return f"<a list nested {_depth(self)} deep>"


class _NestedDict(dict[str, Any]):
    def __repr__(self) -> str:
        return f"<an object nested {_depth(self)} deep>"


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (list, dict)) and value:
        value = value[0] if isinstance(value, list) else next(iter(value.values()))
        depth += 1
    return depth


def _deep(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    for _ in range(depth - 1):
        leaf = [leaf] if kind == "list" else {"a": leaf}
    return _Nested([leaf]) if kind == "list" else _NestedDict(a=leaf)


NAN, INF = float("nan"), float("inf")
MEGABYTE = "x" * 1_000_000
# Values of every type but the right one: edge numbers (NaN and Infinity serialize as the raw JSON
# tokens), numbers as strings, dates no calendar has, invalid UTF-8 (a lone surrogate, as the CLI
# reads an invalid byte), strings past every bound, nesting past the JSON parser's limit.
WRONG: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 10**400, 0.5, -0.0, 1e308, -1e308, 5e-324, NAN, INF, -INF,
    "", " ", "0", "-1", "1e999", "NaN", "null", "true", "9" * 40, "2026-02-30T25:61:61Z", "Thu Feb 30 99:99:99 2026",
    "\x00", "\u202e\U0001f642é\u2028", "\udcff", "a" * 600, "é" * 70_000, MEGABYTE,
    [], [None], [[]], ["a"] * 40, [{}], [1, "a", None, {}], {}, {"": None}, {"a": {"b": {"c": [1]}}},
    _deep(100), _deep(100, kind="dict"), _deep(300),
]  # fmt: skip


def _pick(values: list[Any]) -> st.SearchStrategy[Any]:
    """sampled_from, without printing the values in the strategy's repr (some are megabytes long,
    or nested deeper than repr can go)."""

    def pick(index: int) -> Any:
        return values[index]

    return st.integers(0, len(values) - 1).map(pick)


def _wrong_for(original: Any, index: int, count: int) -> list[Any]:
    """``count`` values of WRONG whose type is not ``original``'s (containers of another shape count
    as wrong too), picked by rotation so that the field paths of one example meet all of them."""
    kind = type(original)
    candidates = [v for v in WRONG if type(v) is not kind or isinstance(v, (dict, list))]
    return [candidates[(index * count + k) % len(candidates)] for k in range(count)]


# -- the invariant of normalization ------------------------------------------------------------------


def check_normalization(body: str, source: str) -> list[Outcome]:
    """normalize_payload on a hostile body: returns in bounded time, at least one outcome, each of
    the three kinds, a reason and detail for every one that is not normalized, the raw record for
    every rejection, and normalized events that validate against the schema."""
    with bounded(len(body.encode("utf-8", "surrogatepass"))):
        outcomes = normalize_payload(body, source, TENANT, RECEIVED_MS)
    assert outcomes, "every payload gives at least one outcome"
    sources = {source} if source != "auto" else {"auto", *vendors.names()}
    for outcome in outcomes:
        assert outcome.kind in KINDS and outcome.source in sources, outcome
        if isinstance(outcome, NormalizedOutcome):
            event = NormalizedEvent.model_validate_json(outcome.event_json)
            assert (event.uid, event.time, event.metadata.tenant_uid) == (outcome.uid, outcome.time, TENANT)
        elif isinstance(outcome, IgnoredOutcome):
            assert isinstance(outcome.reason, IgnoreReason) and outcome.detail
        else:
            assert isinstance(outcome, RejectedOutcome)
            assert isinstance(outcome.reason, RejectReason) and outcome.detail
            assert outcome.raw or not body.strip(), "a rejection keeps the raw record for the dead-letter queue"
    return outcomes


def check_both_sources(body: str, vendor: str) -> None:
    for source in (vendor, "auto"):
        check_normalization(body, source)


# -- 1. every field path of every example, with wrong types, and deleted ---------------------------


def sweep_field_paths(examples: list[Example], per_path: int) -> None:
    for example in examples:
        assert example.documents is not None
        documents = list(example.documents)
        for index, path in enumerate(_paths(documents)):
            if not path:
                continue
            mutations = _wrong_for(_get(documents, path), index, per_path)
            if len(path) > 1 and isinstance(_get(documents, path[:-1]), dict):
                mutations.append(_DELETE)
            for new in mutations:
                # every other path with non-ASCII raw (and lone surrogates as the CLI reads them), the others escaped
                body = example.serialize(_put(documents, path, new), ensure_ascii=index % 2 == 0)
                check_both_sources(body, example.vendor)


@fuzz_test
def test_every_field_path_of_the_examples_with_wrong_types():
    sweep_field_paths(JSON_EXAMPLES, per_path=2)


@fuzz_test
def test_every_field_path_of_the_sample_corpus_with_wrong_types(samples: Path):
    sweep_field_paths([e for e in _corpus(samples) if e.documents is not None], per_path=1)


# -- 2. random combinations of mutations of the JSON examples -----------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
HOSTILE_VALUES = _pick(WRONG) | JSON_VALUES


@st.composite
def mutated_json(draw: st.DrawFn, examples: list[Example]) -> tuple[str, str]:
    """(vendor, body): an example with one to five field paths replaced by hostile values, deleted,
    wrapped in an array or in deep nesting, or duplicated next to themselves."""
    example = draw(st.sampled_from(examples))
    assert example.documents is not None
    documents: Any = list(example.documents)
    for _ in range(draw(st.integers(1, 5))):
        paths = [p for p in _paths(documents) if len(p) > 1]
        if not paths:  # nothing left inside the records
            break
        path = draw(st.sampled_from(paths))
        here = _get(documents, path)
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "nest", "duplicate"]))
        if how == "replace":
            documents = _put(documents, path, draw(HOSTILE_VALUES))
        elif how == "delete":
            documents = _put(documents, path, _DELETE)
        elif how == "wrap":
            documents = _put(documents, path, [here])
        elif how == "nest":
            documents = _put(documents, path, _deep(draw(st.integers(1, 250)), here, draw(st.sampled_from(["list", "dict"]))))
        else:
            documents = _put(documents, path, [here, here] if not isinstance(here, list) else here + here)
    return example.vendor, example.serialize(documents, ensure_ascii=draw(st.booleans()))


@seed(SEED)
@settings(FUZZ, max_examples=800)
@given(mutated_json(JSON_EXAMPLES))
@fuzz_test
def test_combined_mutations_of_the_json_examples(case: tuple[str, str]):
    check_both_sources(case[1], case[0])


# -- 3. bytes: truncation, bit flips, inserted and deleted bytes, invalid UTF-8 ----------------------

INTERESTING_BYTES = [
    b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\x80", b"\x00", b"\r", b"\n", b"\r\n",
    b"\xef\xbb\xbf", b'"', b"\\", b"\\u", b"\\ud800", b"{", b"}", b"[", b"]", b",", b"|", b"\t", b"=", b"#Fields: ", b"CEF:0|",
]  # fmt: skip


@st.composite
def mutated_bytes(draw: st.DrawFn, examples: list[Example]) -> tuple[str, str]:
    """(vendor, body): an example's bytes truncated, bit-flipped, with bytes inserted, deleted or
    repeated, decoded as the CLI reads a file (invalid UTF-8 kept as lone surrogates)."""
    example = draw(st.sampled_from(examples))
    data = example.text.encode("utf-8", "surrogateescape")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat"]))
        if how == "truncate":
            data = data[:at]
        elif how == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
        elif how == "insert":
            data = data[:at] + draw(st.sampled_from(INTERESTING_BYTES) | st.binary(min_size=1, max_size=8)) + data[at:]
        elif how == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        else:
            end = min(len(data), at + draw(st.integers(1, 200)))
            data = data[:end] + data[at:end] * draw(st.integers(1, 50)) + data[end:]
    return example.vendor, data.decode("utf-8", "surrogateescape")


@seed(SEED)
@settings(FUZZ, max_examples=800)
@given(mutated_bytes(EXAMPLE_FILES))
@fuzz_test
def test_byte_mutations_of_the_examples(case: tuple[str, str]):
    check_both_sources(case[1], case[0])


@seed(SEED)
@settings(FUZZ, max_examples=150)
@given(st.data())
@fuzz_test
def test_byte_mutations_of_the_sample_corpus(samples: Path, data: st.DataObject):
    vendor, body = data.draw(mutated_bytes(_corpus(samples)))
    check_both_sources(body, vendor)


@functools.cache
def _corpus(samples: Path) -> list[Example]:
    return load(samples)


# -- 4. the line formats, line by line and field by field -------------------------------------------

HOSTILE_FIELDS = [
    "", '"', '""', '"unclosed', "a\"b", "\\", "\\|", "\\=", "=", "|", ",", ",,,,", "\t", " ", "-", "N/A", "0", "-1", "1e999", "NaN",
    "99999999999999999999999", "2026/02/30 25:61:61", "Feb 30 99:99:99", "\x00", "\r", "\x85", "\u2028", "\udcff", "é🙂", "a" * 600,
    "CEF:0|", "#Fields: a b c", "<14>", "x=" * 200,
]  # fmt: skip


def _separator(line: str) -> str:
    """The separator a line's fields are most likely split on (quoting is ignored on purpose: a
    field replaced across a quoted comma is one more kind of broken line)."""
    return max([",", "\t", "|", " "], key=line.count)


def _replace_field(line: str, index: int, value: str) -> str:
    separator = _separator(line)
    fields = line.split(separator)
    fields[index % len(fields)] = value
    return separator.join(fields)


@fuzz_test
def test_every_field_of_every_line_format_example():
    for example in TEXT_EXAMPLES:
        lines = example.lines
        for number, line in enumerate(lines):
            for index in range(len(line.split(_separator(line))) if line else 0):
                for value in (
                    HOSTILE_FIELDS[(number + index) % len(HOSTILE_FIELDS)],
                    HOSTILE_FIELDS[(number * index) % len(HOSTILE_FIELDS)],
                ):
                    mutated = [*lines[:number], _replace_field(line, index, value), *lines[number + 1 :]]
                    check_both_sources("\n".join(mutated), example.vendor)


@st.composite
def mutated_lines(draw: st.DrawFn, examples: list[Example]) -> tuple[str, str]:
    """(vendor, body): a line-format example with fields replaced, lines dropped, repeated, swapped
    or joined, hostile lines inserted (a header, a CEF prefix, a 1 MB line), and other line ends."""
    example = draw(st.sampled_from(examples))
    lines = example.lines
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        how = draw(st.sampled_from(["field", "field", "drop", "repeat", "swap", "join", "insert", "huge"]))
        if how == "field" and lines[at]:
            value = draw(st.sampled_from(HOSTILE_FIELDS) | st.text(max_size=30))
            lines[at] = _replace_field(lines[at], draw(st.integers(0, 200)), value)
        elif how == "drop" and len(lines) > 1:
            del lines[at]
        elif how == "repeat":  # up to a hundred times, and to a few megabytes
            lines[at:at] = [lines[at]] * min(draw(st.integers(1, 100)), 4_000_000 // (len(lines[at]) + 1))
        elif how == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif how == "join" and at + 1 < len(lines):
            lines[at : at + 2] = [lines[at] + draw(st.sampled_from(["", " ", ",", "\r", "\x85"])) + lines[at + 1]]
        elif how == "insert":
            lines.insert(at, draw(st.sampled_from(HOSTILE_FIELDS) | st.text(max_size=40)))
        elif how == "huge":
            lines[at] = _replace_field(lines[at], draw(st.integers(0, 50)), draw(_pick([MEGABYTE, "a," * 100_000, '"' * 50_000])))
    ending = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
    return example.vendor, ending.join(lines)


@seed(SEED)
@settings(FUZZ, max_examples=500)
@given(mutated_lines(TEXT_EXAMPLES))
@fuzz_test
def test_line_mutations_of_the_line_format_examples(case: tuple[str, str]):
    check_both_sources(case[1], case[0])


@st.composite
def _corpus_mutations(draw: st.DrawFn, corpus: list[Example]) -> tuple[str, str]:
    text = [e for e in corpus if e.documents is None]
    structured = [e for e in corpus if e.documents is not None]
    return draw(mutated_lines(text) | mutated_json(structured))


@seed(SEED)
@settings(FUZZ, max_examples=150)
@given(st.data())
@fuzz_test
def test_line_and_field_mutations_of_the_sample_corpus(samples: Path, data: st.DataObject):
    vendor, body = data.draw(_corpus_mutations(_corpus(samples)))
    check_both_sources(body, vendor)


# -- 5. a broken line of newline-delimited JSON takes nothing else down ---------------------------


@st.composite
def one_broken_line(draw: st.DrawFn) -> tuple[Example, list[str]]:
    example = draw(st.sampled_from(NDJSON_EXAMPLES))
    assert example.documents is not None
    lines = [json.dumps(d) for d in example.documents]
    at = draw(st.integers(0, len(lines) - 1))
    document = example.documents[at]
    path = draw(st.sampled_from(list(_paths(document))))
    broken = _put(document, path, draw(HOSTILE_VALUES | st.just(_DELETE))) if path else draw(HOSTILE_VALUES)
    lines[at] = json.dumps(broken, ensure_ascii=draw(st.booleans()))
    return example, lines


@seed(SEED)
@settings(FUZZ, max_examples=300)
@given(one_broken_line())
@fuzz_test
def test_a_mutated_line_of_newline_delimited_json_changes_only_its_own_outcomes(case: tuple[Example, list[str]]):
    """The outcomes of a feed are the outcomes of its lines, each read alone: a hostile line is
    judged on its own and never changes what happens to its neighbours."""
    example, lines = case

    def verdicts(outcomes: list[Outcome]) -> list[tuple[str, str | None]]:
        return [(o.kind, o.uid if isinstance(o, NormalizedOutcome) else o.reason) for o in outcomes]

    whole = verdicts(check_normalization("\n".join(lines), example.vendor))
    alone = [v for line in lines if line.strip() for v in verdicts(normalize_payload(line, example.vendor, TENANT, RECEIVED_MS))]
    assert whole == alone


# -- 6. nesting, repetition and size around whole payloads ------------------------------------------


@st.composite
def structural(draw: st.DrawFn) -> tuple[str, str]:
    """(vendor, body): an example's first record buried in arrays or API wrappers up to and past the
    parser's nesting limit, repeated hundreds of times, or padded by a huge string of blanks or
    brackets."""
    example = draw(st.sampled_from(JSON_EXAMPLES))
    assert example.documents is not None
    record = example.documents[0]
    how = draw(st.sampled_from(["arrays", "wrappers", "repeat", "pad"]))
    if how == "arrays":
        body = json.dumps(_deep(draw(st.integers(1, 400)), record))
    elif how == "wrappers":
        key = draw(st.sampled_from(["value", "records", "resources", "result", "data", "events", "messagesDelivered"]))
        body = json.dumps(_wrap(record, key, draw(st.integers(1, 120))))
    elif how == "repeat":
        body = json.dumps([record] * draw(st.integers(2, 400)))
    else:
        pad = draw(_pick([" " * 1_000_000, "\n" * 1_000_000, "[" * 100_000, "]" * 100_000, "\ufeff" * 10_000]))
        body = draw(st.sampled_from([pad + json.dumps(record), json.dumps(record) + pad]))
    return example.vendor, body


def _wrap(record: Any, key: str, depth: int) -> Any:
    for _ in range(depth):
        record = {key: [record]}
    return record


@seed(SEED)
@settings(FUZZ, max_examples=250)
@given(structural())
@fuzz_test
def test_nesting_repetition_and_padding_around_the_examples(case: tuple[str, str]):
    check_both_sources(case[1], case[0])


@seed(SEED)
@settings(FUZZ, max_examples=200)
@given(
    st.sampled_from(EXAMPLE_FILES),
    st.none() | st.sampled_from(["acme", "a" * 32, "a" * 33, "Acme", "-acme", "acme\n", "ac me", "\udcff"]) | st.text(max_size=40),
    st.none() | st.sampled_from([*vendors.names(), "auto", "Okta", "okta ", "", "\x00"]) | st.text(max_size=20),
)
@fuzz_test
def test_any_envelope_gives_each_payload_its_outcomes(example: Example, tenant: str | None, source: str | None):
    """Whatever the message attributes say: a tenant that is no valid id, or a source that names no
    vendor, is one rejection of the whole payload, with the payload kept; anything else is read."""
    with bounded(_bytes(example.text)):
        outcomes = normalize_payload(example.text, source, tenant, RECEIVED_MS)
    assert outcomes
    if not tenant or not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", tenant):  # (not TENANT_ID: the oracle is written apart)
        reason: RejectReason | None = RejectReason.MISSING_TENANT
    elif (source or "auto") not in {*vendors.names(), "auto"}:
        reason = RejectReason.UNKNOWN_SOURCE
    else:
        reason = None
    if reason is not None:
        (outcome,) = outcomes
        assert isinstance(outcome, RejectedOutcome) and outcome.reason == reason and outcome.raw == example.text


# -- 7. the batcher at the limits --------------------------------------------------------------------

FILLS = ["x", "é", "€", "🙂", "\\\\"]  # 1 to 4 bytes of UTF-8; a backslash as the batcher receives it, already escaped JSON
UIDS = [f"{n:032x}" for n in range(8)]  # few, so that some events are drawn twice (a redelivery)


def sized_item(uid: str, time_ms: int, size: int, fill: str) -> batching.Item:
    """An event whose compact JSON is exactly ``size`` UTF-8 bytes: padded with ``fill`` as far as it
    goes, then with ASCII."""
    head = json.dumps({"uid": uid, "pad": ""}, separators=(",", ":"))
    room = size - len(head)
    width = len(fill.encode())
    pad = fill * (room // width) + "x" * (room % width)
    return batching.Item(uid, time_ms, head[:-2] + pad + '"}')


@st.composite
def at_the_limits(draw: st.DrawFn) -> tuple[str, int, list[batching.Item]]:
    """(tenant, cap, events) with sizes at the budget and one byte either side, halves that fill a
    batch to the byte with the comma between them, events no batch can hold, and duplicates."""
    tenant = draw(st.sampled_from(["a", "acme", "t" * 32]))
    cap = draw(st.sampled_from([batching.PAYLOAD_CAP]) | st.integers(400, 4000))  # small caps: the same arithmetic, faster
    budget = cap - batching.overhead(tenant)
    half = budget // 2
    near = [budget - 2, budget - 1, budget, budget + 1, budget + 2, half - 1, half, half + 1, budget - half - 1, 2 * budget]
    smallest = len(sized_item(UIDS[0], 0, 0, "x").json)
    items = []
    for _ in range(draw(st.integers(1, 10))):
        size = max(smallest, draw(st.sampled_from(near) | st.integers(smallest, budget + 10)))
        items.append(sized_item(draw(st.sampled_from(UIDS)), draw(st.integers(0, 3)), size, draw(st.sampled_from(FILLS))))
    return tenant, cap, items


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


@seed(SEED)
@settings(FUZZ, max_examples=300)
@given(at_the_limits(), st.randoms(use_true_random=False))
@fuzz_test
def test_the_batcher_at_the_limits(case: tuple[str, int, list[batching.Item]], rng: random.Random):
    tenant, cap, items = case
    stored: dict[str, str] = {}

    def claim(uid: str, body: str) -> str:
        stored[uid] = body
        return json.dumps({"claim_check": {"uid": uid, "bytes": _bytes(body)}}, separators=(",", ":"))

    with bounded(sum(_bytes(i.json) for i in items)):
        batches = batching.plan(tenant, items, cap=cap, claim_check=claim)
    first: dict[str, batching.Item] = {}
    for item in items:
        first.setdefault(item.uid, item)  # a redelivered uid: the first copy is the one kept
    budget = cap - batching.overhead(tenant)
    carried: list[str] = []
    bodies: list[list[str]] = []
    for batch in batches:
        assert batch.size == _bytes(batch.payload) <= cap
        document = json.loads(batch.payload)
        assert document == {"mode": "events", "tenant_id": tenant, "batch_id": batch.batch_id, "events": document["events"]}
        assert batch.batch_id == batching.batch_id(tenant, batch.uids) and re.fullmatch(r"[A-Za-z0-9_-]{1,80}", batch.execution_name)
        bodies.append([json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in document["events"]])
        for event, uid in zip(document["events"], batch.uids, strict=True):
            item = first[uid]
            if "claim_check" in event:  # only what no batch could hold, and the pointer leads to all of it
                assert event["claim_check"]["uid"] == uid and _bytes(item.json) > budget and stored[uid] == item.json
            else:
                assert _bytes(item.json) <= budget and json.dumps(event, separators=(",", ":"), ensure_ascii=False) == item.json
            carried.append(uid)
    assert carried == [i.uid for i in sorted(first.values(), key=lambda i: (i.time, i.uid))]  # each event once, in order
    for batch, following in zip(batches, bodies[1:]):  # greedy: the next batch's first event did not fit
        assert batch.size + 1 + _bytes(following[0]) > cap
    assert len({b.batch_id for b in batches}) == len(batches)
    # the same events in any order, redelivered, give the same batches (StartExecution is idempotent)
    again = list(first.values())
    rng.shuffle(again)
    repeated = batching.plan(tenant, again + again[: len(again) // 2], cap=cap, claim_check=claim)
    assert [(b.batch_id, b.payload) for b in repeated] == [(b.batch_id, b.payload) for b in batches]


# -- 8. rule validation, compilation and matching ----------------------------------------------------

# What YAML's safe_load gives besides JSON's types (dates, timestamps, !!binary, !!set), and the
# values every operator must refuse.
JUNK: list[Any] = [
    None, True, False, 0, -1, 10**400, 5e9, 5e9 + 1, -0.0, NAN, INF, 1e308, "", "a" * 600, [], [[]], {}, {"a": 1}, {"a": {"b": {}}},
    datetime.date(2026, 3, 17), datetime.datetime(2026, 3, 17, 9, 0, tzinfo=datetime.timezone.utc), b"\xff", {1, 2}, _deep(2000),
    _deep(2000, kind="dict"),
]  # fmt: skip
NO_SURROGATES = st.characters(exclude_categories=["Cs"])  # a validated rule holds none (it would not store as JSON)
TEXT = st.text(max_size=12) | st.sampled_from(["", "*", "a*b", "\\*", "a**b", "a" * 513, "ß", "İ", "\u202e", "\udcff", "x.y", "$or"])
NUMBER = st.integers(-(10**10), 10**10) | st.floats() | st.sampled_from([5e9, -5e9, 5e9 + 1, 10**400, -0.0, 2**53 + 1])
# (deferred: a strategy's repr spells out every strategy it is made of, and these are reused many times)
OPERAND = st.deferred(lambda: TEXT | NUMBER | _pick(JUNK))
CIDR = st.builds(lambda ip, bits: f"{ip}/{bits}", st.ip_addresses(), st.integers(0, 130)) | st.sampled_from(["fe80::%eth0/64", "1.2.3.4"])
WILDCARD = st.text(st.sampled_from("ab*\\.é"), max_size=24)
OPERATOR_NAMES = ["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "cidr", "exists", "wildcard"]


def _op(name: str, argument: Any) -> dict[str, Any]:
    return {name: argument}


OPERATORS = st.deferred(lambda: st.one_of(
    st.builds(_op, st.sampled_from(["prefix", "suffix"]), TEXT | st.builds(lambda t: {"equals-ignore-case": t}, OPERAND) | OPERAND),
    st.builds(_op, st.just("equals-ignore-case"), OPERAND),
    st.builds(_op, st.just("anything-but"), OPERAND | st.lists(OPERAND, max_size=4) | st.dictionaries(
        st.sampled_from(OPERATOR_NAMES), TEXT | WILDCARD | st.lists(TEXT | WILDCARD, max_size=3) | OPERAND, max_size=2)),
    st.builds(_op, st.just("numeric"), st.lists(st.sampled_from(["=", ">", ">=", "<", "<=", "!="]) | NUMBER, max_size=5)),
    st.builds(_op, st.just("cidr"), CIDR | OPERAND),
    st.builds(_op, st.just("exists"), st.booleans() | OPERAND),
    st.builds(_op, st.just("wildcard"), WILDCARD | OPERAND),
    st.builds(_op, TEXT, OPERAND),  # an unknown operator
    st.dictionaries(st.sampled_from(OPERATOR_NAMES), OPERAND, min_size=2, max_size=3),  # two operators in one object
))  # fmt: skip
FIELDS = st.sampled_from(["user", "name", "email_addr", "class_uid", "severity_id", "url", "hostname", "ip", "a", "é", "", "x.y"])
VALUE_ARRAYS = st.deferred(lambda: st.lists(TEXT | NUMBER | st.booleans() | st.none() | OPERATORS, max_size=6) | _pick(JUNK))
PATTERNS = st.deferred(
    lambda: (
        st.recursive(
            st.dictionaries(FIELDS, VALUE_ARRAYS, max_size=4),
            lambda inner: st.dictionaries(FIELDS | st.just("$or"), inner | VALUE_ARRAYS | st.lists(inner, max_size=5), max_size=4),
            max_leaves=24,
        )
        | _pick(
            [
                _deep(9, ["x"], "dict"),  # one level past the limit
                {f"f{i}": ["v"] for i in range(40)},  # more fields than one branch may hold
                {"a": ["v"] * 300},  # more values than a pattern may hold
                {
                    "a": {"$or": [{"b": [i]} for i in range(5)]},
                    "c": {"$or": [{"d": [i]} for i in range(5)]},
                    "$or": [{"e": [i]} for i in range(5)],
                },
                {"a": {1: ["x"], "c": ["y"]}},  # a YAML key that is not a string
                {"a": [{"wildcard": "*a*a*a*a*a*a*a*b"}], "b": [{"anything-but": {"wildcard": ["*a*a*a*a*a*a*a*b"] * 10}}]},
                {"a": [{"equals-ignore-case": "x" * 512}] * 200},
            ]
        )
    )
)
EVENT_VALUES = st.deferred(
    lambda: st.recursive(
        st.none() | st.booleans() | NUMBER | TEXT | _pick(["10.1.2.3", "2001:db8::1", "a" * 100_000 + "b"]),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FIELDS, inner, max_size=4),
        max_leaves=12,
    )
)


def _leaves(event: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(field path, value) of every scalar of a normalized event; an array gives each element."""
    for key, value in event.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            for element in value if isinstance(value, list) else [value]:
                if not isinstance(element, (dict, list)):
                    yield (*path, key), element


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


@st.composite
def operand_for(draw: st.DrawFn, value: Any) -> Any:
    """A value-array element built from an event's value: one that matches it, or just misses it."""
    if isinstance(value, str):
        cut = draw(st.integers(0, len(value)))
        options = [
            value, value + "x", {"prefix": value[:cut]}, {"suffix": value[cut:]}, {"equals-ignore-case": value.swapcase()},
            {"prefix": {"equals-ignore-case": value[:cut].upper()}}, {"suffix": {"equals-ignore-case": value[cut:].upper()}},
            {"wildcard": _escape(value[:cut]) + "*" + _escape(value[cut + 1 :])},
            {"anything-but": value}, {"anything-but": [value + "x", value + "y"]},
            {"anything-but": {"prefix": value[:cut] or "x"}}, {"anything-but": {"equals-ignore-case": [value.upper() or "x"]}},
            {"anything-but": {"wildcard": "*" + _escape(value[cut:])}}, {"cidr": f"{value}/{draw(st.integers(0, 128))}"},
            {"exists": True}, {"exists": False},
        ]  # fmt: skip
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        options = [
            value, value + 1, {"numeric": ["=", value]}, {"numeric": [">=", value]}, {"numeric": [">", value]},
            {"numeric": [">", value - 1, "<=", value]}, {"anything-but": [value]}, {"exists": True}, {"exists": False},
        ]  # fmt: skip
    else:
        return value  # a boolean or null matches itself
    return options[draw(st.integers(0, len(options) - 1))]  # (an index: a new sampled_from per draw is slow)


@st.composite
def patterns_for_events(draw: st.DrawFn, nested: bool = False) -> dict[str, Any]:
    """A pattern over one to four fields of an example event, each with one to three operands built
    from the event's values (so that some rules match, and verdicts are worth comparing), sometimes
    under an $or with a second such pattern."""
    leaves = list(_leaves(draw(st.sampled_from(EXAMPLE_EVENTS))))
    chosen = draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=4, unique_by=lambda leaf: leaf[0]))
    pattern: dict[str, Any] = {}
    for path, value in chosen:
        node = pattern
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = draw(st.lists(operand_for(value), min_size=1, max_size=3))
    if not nested and draw(st.booleans()):
        pattern["$or"] = [draw(patterns_for_events(nested=True)), draw(patterns_for_events(nested=True))]
    return pattern


RULE_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,8}", fullmatch=True)
# Rules about the example events (most valid, so that rules compile and match and their verdicts are
# worth comparing), and hostile documents: every field may hold the wrong thing.
GOOD_RULE_DOCUMENTS = st.deferred(lambda: st.fixed_dictionaries(
    {"rule_id": RULE_IDS, "match": patterns_for_events()},
    optional={"enabled": st.booleans(), "title": st.text(NO_SURROGATES, max_size=40), "severity": st.sampled_from(["low", "critical"]),
              "actions": st.lists(st.fixed_dictionaries({"template": st.text(NO_SURROGATES, max_size=40)}), min_size=1, max_size=2)},
))  # fmt: skip
HOSTILE_RULE_DOCUMENTS = st.deferred(lambda: st.fixed_dictionaries(
    {"rule_id": RULE_IDS | TEXT | _pick(JUNK), "match": patterns_for_events() | PATTERNS | _pick(JUNK)},
    optional={
        "title": TEXT | _pick(JUNK),
        "enabled": st.booleans() | _pick(JUNK),
        "severity": st.sampled_from(["low", "critical", "CRITICAL"]) | _pick(JUNK),
        "threshold": st.fixed_dictionaries({"count": NUMBER | _pick(JUNK),
                                            "window": st.sampled_from(["30s", "15m", "2h", "7d", "0s", "31d", "1 h", "h"]) | NUMBER}),
        "suppress": st.fixed_dictionaries({"duration": st.sampled_from(["1h", "-1s"]) | NUMBER}, optional={"key": TEXT}),
        "actions": st.lists(st.fixed_dictionaries({}, optional={"type": st.sampled_from(["notify", "escalate", "x"]), "template": TEXT}),
                            max_size=11),
        "tests": st.lists(st.fixed_dictionaries({"name": TEXT, "event": st.dictionaries(FIELDS, OPERAND),
                                                 "expect": st.sampled_from(["match", "x"])}), max_size=3),
        "tags": st.lists(TEXT, max_size=22) | _pick(JUNK),
    },
))  # fmt: skip
RULE_DOCUMENTS = GOOD_RULE_DOCUMENTS | HOSTILE_RULE_DOCUMENTS


@st.composite
def hostile_example_events(draw: st.DrawFn) -> dict[str, Any]:
    """An example event with a few of its fields replaced by hostile values (long strings, huge
    integers, NaN, deep arrays): what rules see, and what a rule test may hold."""
    event = draw(st.sampled_from(EXAMPLE_EVENTS))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from([p for p in _paths(event) if p and not isinstance(p[-1], int)]))
        event = _put(event, path, draw(EVENT_VALUES))
    return event


EVENTS = st.deferred(
    lambda: (
        hostile_example_events()
        | hostile_example_events()
        | st.dictionaries(FIELDS, EVENT_VALUES, max_size=6)
        | _pick([{"a": _deep(900)}, {"a": list(range(5000))}, {"a": [10**400, NAN, -0.0, INF]}])
    )
)


def _size(value: Any) -> int:
    """About the bytes of a value as JSON (a walk without recursion: some are nested past its limit)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
        total += len(item) if isinstance(item, (str, bytes)) else 2
    return total


def _brute_force(rule: Rule, event: dict[str, Any]) -> bool:
    """The rule's verdict without the index: every branch verified on the event's structure (array
    consistency), where the matcher verifies most candidates on the values flattened per path."""
    return any(consistent(event, Plan([(c.path, c) for c in branch])) for branch in rule.pattern.branches)


@seed(SEED)
@settings(FUZZ, max_examples=500)
@given(st.lists(RULE_DOCUMENTS, min_size=1, max_size=4), st.lists(EVENTS, max_size=5))
@fuzz_test
def test_rule_documents_validate_or_are_refused_and_valid_ones_compile_and_match(documents: list[Any], events: list[dict[str, Any]]):
    """Rule.model_validate accepts a document or raises ValidationError, nothing else; a valid rule
    is stored as JSON and read back unchanged (rules push, then check_rules); valid rules compile;
    matching any event never raises, and the index gives every rule the verdict it would give alone."""
    rules: list[Rule] = []
    for document in documents:
        with bounded(_size(document)):
            try:
                rule = Rule.model_validate(document)
            except ValidationError:
                continue
        stored = Rule.model_validate_json(rule.model_dump_json(exclude_none=True))
        assert stored.match == rule.match and stored.model_dump_json() == rule.model_dump_json()
        rules.append(rule)
    with bounded(sum(_size(r.match) for r in rules)):
        matcher = compile_rules(rules)
    for event in events:
        with bounded(_size(event) * max(1, len(rules))):
            matched = matcher.match(event)
        assert matched == [r.rule_id for r in rules if r.enabled and _brute_force(r, event)]


@seed(SEED)
@settings(FUZZ, max_examples=500)
@given(PATTERNS | _pick(JUNK))
@fuzz_test
def test_compile_patterns_accepts_or_raises_pattern_error(pattern: Any):
    with bounded(_size(pattern)):
        try:
            matcher = compile_patterns({"r": pattern})
        except PatternError as exc:
            assert exc.path.startswith("r.match") and exc.message
            return
    assert isinstance(matcher, Matcher) and len(matcher) == 1


# -- 9. templates -------------------------------------------------------------------------------------

PLACEHOLDERS = [
    "{user}", "{rule}", "{title}", "{event.time_dt}", "{event.uid}", "{event.message}", "{event.url}", "{event.x.y}", "{event.}", "{event}",
    "{0.__class__}", "{user.__init__}", "{user.__init__.__globals__}", "{event.__class__}", "{event.__dict__}", "{rule!r}",
    "{title:>1000000000}", "{user[0]}", "{event[uid]}", "{__import__}", "{{", "}}", "{", "}", "{}", "{0}", "{{user}}", "%s", "%(user)s",
    "${user}", "{\n}", "{USER}", "{user }", "{event.uid", "{event.a.b.c.d.e.f.g.h}",
]  # fmt: skip
TEMPLATES = st.lists(st.sampled_from(PLACEHOLDERS) | st.text(NO_SURROGATES, max_size=8), max_size=30).map("".join) | st.builds(
    lambda piece, n: piece * n, st.sampled_from(PLACEHOLDERS), st.integers(1_000, 20_000)
)
# Names as long as an event may carry (512 characters): a huge template of {user} is then a huge message, not more.
HOSTILE_NAMES = st.text(NO_SURROGATES, max_size=20) | st.sampled_from(PLACEHOLDERS) | st.just("{title}" * 73)
REPRS = ("<class", " object at 0x", "<bound method", "<function", "<built-in", "<module", "mappingproxy(")


_LOWER, _WORD = set(string.ascii_lowercase + "_"), set(string.ascii_letters + string.digits + "_")
# The event summary's keys, as docs/rules.md lists them: the only {event.<key>} a template can use.
SUMMARY_KEYS = {"uid", "time_dt", "class_name", "activity_name", "severity", "disposition", "message", "product", "vendor", "url",
                "app_name", "finding", "device", "file"}  # fmt: skip


def _expected(template: str, names: dict[str, str], event: dict[str, Any]) -> str:
    """The documented rendering, written as a scan: ``{name}`` of the fixed set (``{user}``, ``{rule}``,
    ``{title}``, ``{event.<summary key>}``) is replaced, anything else stays as written (a value is
    never read again)."""
    out, i = [], 0
    while i < len(template):
        end = template.find("}", i + 1) if template[i] == "{" else -1
        if end > 0:
            name = template[i + 1 : end]
            head, *rest = name.split(".")
            if head and set(head) <= _LOWER and all(part and set(part) <= _WORD for part in rest):
                if head == "event" and len(rest) == 1 and rest[0] in SUMMARY_KEYS:
                    value = event.get(rest[0])
                    out.append("" if value is None else str(value))
                else:
                    out.append(names.get(name, template[i : end + 1]))
                i = end + 1
                continue
        out.append(template[i])
        i += 1
    return "".join(out)


@seed(SEED)
@settings(FUZZ, max_examples=400)
@given(st.sampled_from(EXAMPLE_EVENTS), TEMPLATES | st.none(), HOSTILE_NAMES, HOSTILE_NAMES, st.lists(TEMPLATES | st.none(), max_size=3))
@fuzz_test
def test_templates_render_by_plain_substitution(event: dict[str, Any], template: str | None, name: str, title: str, more: list[str | None]):
    """Any template renders, without raising, by substitution alone: no attribute or index is ever
    evaluated (no Python repr in the output), a substituted value is never expanded again, and the
    webhook body encodes as JSON."""
    user = {**(event.get("user") or {}), "name": name}
    rule = Rule.model_validate({"rule_id": "r1", "match": {"class_uid": [event["class_uid"]]}, "title": title[:200] or None})
    match = match_record(TENANT, rule, {**event, "user": user})
    match["actions"] = [{"type": "notify", "template": t} for t in (template, *more)]
    with bounded(_bytes(template or "") + 64):
        rendered = notify.render(template, match)
    names = {"user": match["user"].get("name") or match["user"].get("email_addr") or "there", "rule": "r1", "title": match["title"]}
    assert rendered == _expected(template or notify.DEFAULT_TEMPLATE, names, match["event"])
    inputs = (template or notify.DEFAULT_TEMPLATE) + json.dumps(match, ensure_ascii=False)
    assert not [r for r in REPRS if r in rendered and r not in inputs]
    with bounded(sum(_bytes(t or "") for t in (template, *more)) + 64):
        body = notify.notification(TENANT, match)
        encoded = notify.encode(body)
    assert json.loads(encoded) == body
    assert [a["message"] for a in body["actions"]] == [notify.render(t, match) for t in (template, *more)]
    assert all("template" not in a for a in body["actions"])


# -- 10. cost that grows with the input, never faster --------------------------------------------------

OKTA = json.loads((EXAMPLES / "okta" / "user_account_lock.json").read_text())
PANOS_LINE = (EXAMPLES / "paloalto" / "syslog_threat_csv.log").read_text().split("\n")[0]
UMBRELLA_LINE = (EXAMPLES / "cisco_umbrella" / "dns_logs_s3_export.log").read_text().split("\n")[0]
W3C_HEADER, W3C_LINE = (EXAMPLES / "netskope" / "transaction_w3c_with_fields_header.log").read_text().split("\n")[:2]
CEF_HEAD = "CEF:0|Palo Alto Networks|LF|2.0|THREAT|virus|4|"
WILDCARDS = compile_patterns({"w": {"a": [{"wildcard": "*a*a*a*a*a*a*a*b"}], "b": [{"anything-but": {"wildcard": ["*a*b*a*b*"] * 8}}]}})
MATCH = match_record(TENANT, Rule.model_validate({"rule_id": "r1", "match": {"class_uid": [3002]}}), EXAMPLE_EVENTS[0])


def _normalizing(body: str, source: str = "auto") -> Callable[[], object]:
    return functools.partial(normalize_payload, body, source, TENANT, RECEIVED_MS)


# shape -> (an input of size n, as the call to time; the smallest n to start from)
GROWTH: dict[str, tuple[Callable[[int], Callable[[], object]], int]] = {
    "a huge JSON string field": (lambda n: _normalizing(json.dumps({**OKTA, "displayMessage": "é\\" * n}), "okta"), 20_000),
    "a JSON object of many keys": (lambda n: _normalizing(json.dumps({f"k{i}": [] for i in range(n)})), 2_000),
    "a JSON array of many records": (lambda n: _normalizing(json.dumps([OKTA] * n)), 20),
    "many lines of newline-delimited JSON": (lambda n: _normalizing("\n".join([json.dumps(OKTA)] * n)), 20),
    "many lines no vendor reads": (lambda n: _normalizing("x\n" * n), 2_000),
    "many PAN-OS lines": (lambda n: _normalizing("\n".join([PANOS_LINE] * n), "paloalto"), 20),
    "many Umbrella lines": (lambda n: _normalizing("\n".join([UMBRELLA_LINE] * n), "cisco_umbrella"), 20),
    "many W3C lines": (lambda n: _normalizing("\n".join([W3C_HEADER, *[W3C_LINE] * n]), "netskope"), 20),
    "a CSV line of many quoted fields": (lambda n: _normalizing(PANOS_LINE + ',"a""b"' * n, "paloalto"), 2_000),
    "an unclosed quote before many lines": (lambda n: _normalizing('"' + "\n".join([UMBRELLA_LINE] * n), "cisco_umbrella"), 20),
    "a CEF line of many extensions": (lambda n: _normalizing(CEF_HEAD + "k=v\\=w " * n, "paloalto"), 2_000),
    "a CEF header of many escaped pipes": (lambda n: _normalizing("CEF:0|" + "\\|" * n + "|a|b|c|d|1|x=y", "paloalto"), 2_000),
    "a template of many placeholders": (lambda n: functools.partial(notify.render, "{user} {event.uid} {x}" * n, MATCH), 2_000),
    "a template of unclosed placeholders": (lambda n: functools.partial(notify.render, "{event." + "a." * n, MATCH), 2_000),
    "wildcards against a long string": (lambda n: functools.partial(WILDCARDS.match, {"a": "c" * n + "b", "b": "c" * n}), 2_000),
    "a rule field of many values": (lambda n: functools.partial(WILDCARDS.match, {"a": ["ab"] * n}), 2_000),
    "batching many small events": (lambda n: functools.partial(batching.plan, TENANT, [sized_item(f"{i:032x}", i, 60, "x")
                                                                                       for i in range(n)]), 500),
}  # fmt: skip
SCALE = 8  # linear: ~8 times the cost; quadratic: ~64
RATIOS: dict[str, float] = {}
# Room for caches and allocators at the larger size (the JSON parser itself reaches ~17 on an object of
# a million keys), and still half of quadratic.
MAX_RATIO = 32


def _cpu(call: Callable[[], object], repeats: int = 3) -> float:
    """The least CPU time of a few runs (the others were disturbed), without garbage collections."""
    best = math.inf
    for _ in range(repeats):
        gc.disable()
        start = time.thread_time()
        call()
        best = min(best, time.thread_time() - start)
        gc.enable()
    return best


@pytest.mark.parametrize("shape", GROWTH)
@fuzz_test
def test_cost_grows_linearly(shape: str):
    """The cost of each shape at n and at 8n: linear code takes about 8 times as long, a quadratic
    loop 64 times. n doubles until the small input costs 5 ms, so that timer noise is negligible; a
    ratio over the bound is measured again (twice at most), so that a neighbour's burst on a shared
    machine is not taken for a quadratic loop, which exceeds it every time."""
    build, n = GROWTH[shape]
    small = _cpu(build(n))
    while small < 0.005 and n < 2_000_000:
        n *= 2
        small = _cpu(build(n))
    large = _cpu(build(n * SCALE))
    tally = _active[-1]
    tally.record(large, None)
    if small < 0.005:  # still negligible at two million (str.find scans memory at memchr speed): no ratio to take
        assert large < 0.1, f"{shape}: {large * 1000:.1f} ms at n={n * SCALE:,}"
        return
    ratio = large / small
    for _ in range(2):
        if ratio < MAX_RATIO:
            break
        ratio = min(ratio, _cpu(build(n * SCALE)) / _cpu(build(n)))
    RATIOS[shape] = ratio
    worst = max(RATIOS, key=RATIOS.__getitem__)
    tally.note = f"; largest ratio {RATIOS[worst]:.1f} ({worst})"
    assert ratio < MAX_RATIO, f"{shape}: {ratio:.0f} times the cost from n={n:,} ({small * 1000:.1f} ms) to {SCALE}n"
