"""Hostile and broken payloads: every raw record still ends in exactly one outcome, a broken record
never takes its neighbours down, and the CLI prints one JSON line per outcome without a traceback.

The table at the end is checked twice: through ``normalize_payload`` and through
``python -m cli normalize --source auto``.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from emulator.stack import EXAMPLES, ROOT
from handlers import vendors
from handlers.ingest import normalize_payload
from handlers.outcomes import IgnoreReason, RejectedOutcome, RejectReason
from handlers.tenancy import tenant_of
from handlers.vendors import netskope, okta, paloalto

OKTA = json.loads((EXAMPLES / "okta" / "user_account_lock.json").read_text())
NETSKOPE = json.loads((EXAMPLES / "netskope" / "alert_malsite_blocked.json").read_text())


def _kinds(body: str, source: str = "auto") -> list[tuple[str, str | None]]:
    """(kind, reason) of every outcome of a payload."""
    return [(o.kind, getattr(o, "reason", None)) for o in normalize_payload(body, source, "acme")]


# 1. a vendor's detect/records/parse_text failing on one record rejects that record only -------------


def _boom(*args: Any) -> Any:
    raise RuntimeError("a vendor bug")


def test_a_detect_that_raises_rejects_that_record_only(monkeypatch: pytest.MonkeyPatch):
    real = okta.detect
    monkeypatch.setattr(okta, "detect", lambda record: _boom() if "boom" in record else real(record))
    hostile = {**OKTA, "uuid": "hostile", "boom": 1}
    outcomes = normalize_payload(json.dumps([OKTA, hostile, {**OKTA, "uuid": "second"}]), "auto", "acme")
    assert [o.kind for o in outcomes] == ["normalized", "rejected", "normalized"]
    rejected = outcomes[1]
    assert rejected.reason == RejectReason.WRONG_TYPES and "RuntimeError: a vendor bug" in rejected.detail
    assert json.loads(rejected.raw) == hostile  # the dead-letter queue gets the record itself
    (single,) = normalize_payload(json.dumps(hostile), "auto", "acme")  # one event, not an array
    assert (single.kind, single.reason, json.loads(single.raw)) == ("rejected", RejectReason.WRONG_TYPES, hostile)


def test_records_that_raise_reject_the_payload_they_were_splitting(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(okta, "records", _boom)
    (outcome,) = normalize_payload(json.dumps([OKTA]), "okta", "acme")
    assert (outcome.kind, outcome.reason, outcome.source) == ("rejected", RejectReason.WRONG_TYPES, "okta")
    assert json.loads(outcome.raw) == [OKTA] and "RuntimeError" in outcome.detail


def test_parse_text_that_raises_rejects_the_payload(monkeypatch: pytest.MonkeyPatch):
    body = (EXAMPLES / "paloalto" / "syslog_threat_csv.log").read_text()
    monkeypatch.setattr(paloalto, "parse_text", _boom)
    for source in ("paloalto", "auto"):
        (outcome,) = normalize_payload(body, source, "acme")
        assert (outcome.kind, outcome.reason, outcome.raw) == ("rejected", RejectReason.MALFORMED, body)
        assert "RuntimeError: a vendor bug" in outcome.detail


def test_netskope_detection_survives_a_type_that_is_a_list_or_an_object():
    for hostile_type in (["alert"], {"a": 1}):
        hostile = {"timestamp": 1_773_000_000, "type": hostile_type}
        assert netskope.detect(hostile) is False
        outcomes = normalize_payload(json.dumps([OKTA, hostile, NETSKOPE]), "auto", "acme")
        assert [(o.kind, o.source) for o in outcomes] == [("normalized", "okta"), ("rejected", "auto"), ("normalized", "netskope")]


@pytest.mark.parametrize("tenant", ["acme\n", "\nacme", "acme ", "ACME", "a" * 33, "acme\udcff"])
def test_a_tenant_id_with_anything_around_it_is_no_tenant_id(tenant: str):
    # Found by tests/test_fuzz.py: "acme\n" passed the check ($ matches before a final line break),
    # and every record was then rejected on its event's tenant_uid instead of the payload once.
    body = json.dumps(OKTA)
    (outcome,) = normalize_payload(body, "okta", tenant)
    assert (outcome.kind, outcome.reason, outcome.raw) == ("rejected", RejectReason.MISSING_TENANT, body)
    with pytest.raises(ValueError, match="no valid tenant_id"):
        tenant_of({"tenant_id": tenant})  # the Lambda inputs' check is the same one


# Keys the detect functions and API wrappers look at, so generated objects reach their branches.
_KEYS = ("type timestamp access_method ur_normalized sourcetype event category properties title severity createdDateTime "
         "alertCreationTime GUID clickTime messageID threatsInfoMap spamScore metadata eventType composite_id cid agent_id aid "
         "event_simpleName LogType DeviceSN DeviceName accountId processingId aggregateId published actor ConnectionID "
         "ConnectionStatus urlcategory dns_req nwsvc auditlogtype tunneltype applicationname resources value records result "
         "data messagesDelivered messagesBlocked clicksPermitted clicksBlocked").split()  # fmt: skip
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
JSON_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), inner, max_size=6)
)


@seed(20260316)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_detect_and_records_never_raise_on_json_values(value: Any):
    for vendor in vendors.VENDORS.values():
        vendor.detect(value)
        for record in vendor.records(value):
            vendor.detect(record)


@seed(20260316)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(JSON_VALUES | st.fixed_dictionaries({"timestamp": st.integers(), "type": JSON_VALUES}), max_size=4))
def test_auto_gives_every_array_element_exactly_one_outcome(records: list[Any]):
    outcomes = normalize_payload(json.dumps([OKTA, *records]), "auto", "acme")
    assert outcomes[0].kind == "normalized"  # the good neighbour is evaluated, whatever follows it
    assert len(outcomes) == len(records) + 1  # (none of these keys names several recipients)


_EXAMPLE_BODIES = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*/*")) if p.suffix in (".json", ".log")]


@st.composite
def _mutated_examples(draw: st.DrawFn) -> str:
    """An example payload with a few characters inserted (quotes, brackets, line breaks, NUL, an
    invalid byte), slices cut out or its end cut off."""
    body = draw(st.sampled_from(_EXAMPLE_BODIES))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(body)))
        how = draw(st.sampled_from(["insert", "cut", "truncate"]))
        if how == "insert":
            body = body[:at] + draw(st.text(st.sampled_from('"\n\r,{}[]: \\#x1\u2028\x85\x00\udcff'), max_size=3)) + body[at:]
        elif how == "cut":
            body = body[:at] + body[draw(st.integers(at, min(len(body), at + 60))) :]
        else:
            body = body[:at]
    return body


@seed(20260316)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_examples(), st.sampled_from([*vendors.names(), "auto"]))
def test_no_mutated_example_crashes_normalization(body: str, source: str):
    for outcome in normalize_payload(body, source, "acme"):
        assert outcome.kind == "normalized" or outcome.detail


# 2. an empty page is one ignored outcome, not nothing -----------------------------------------------

EMPTY_PAGES = {  # payload -> (named source, what the detail names)
    "[]": ("okta", "an empty JSON array"),
    '{"value": []}': ("microsoft_defender", '"value": []'),
    '{"@odata.context": "x", "records": []}': ("microsoft_defender", '"records": []'),
    '{"meta": {"query_time": 0.01}, "resources": [], "errors": []}': ("crowdstrike", '"resources": []'),
    '{"ok": 1, "result": []}': ("netskope", '"result": []'),
    '{"meta": {"status": 200}, "data": []}': ("mimecast", '"data": []'),
    '{"queryEndTime": "2026-03-10T09:00:00Z", "messagesDelivered": [], "messagesBlocked": [], "clicksPermitted": [], "clicksBlocked": []}': (
        "proofpoint_tap",
        '"messagesDelivered": []',
    ),
}


@pytest.mark.parametrize("body", EMPTY_PAGES)
def test_an_empty_page_is_ignored_once(body: str):
    named, shape = EMPTY_PAGES[body]
    for source in (named, "auto"):
        (outcome,) = normalize_payload(body, source, "acme")
        assert (outcome.kind, outcome.reason) == ("ignored", IgnoreReason.EMPTY), (source, outcome.summary())
        assert shape in outcome.detail, outcome.detail


def test_an_empty_body_is_still_malformed():
    for body in ("", "   ", "\n\n\r\n", "\ufeff"):  # nothing at all: not even a page
        (outcome,) = normalize_payload(body, "auto", "acme")
        assert (outcome.kind, outcome.reason, outcome.detail) == ("rejected", RejectReason.MALFORMED, "empty payload")


def test_an_empty_page_among_newline_delimited_pages():
    body = '{"value": []}\n' + json.dumps(OKTA) + "\n[]\n"
    assert _kinds(body) == [("ignored", IgnoreReason.EMPTY), ("normalized", None), ("ignored", IgnoreReason.EMPTY)]


# 3. one bad line of a line format rejects that line only, with its number ----------------------------


def _lines(name: str) -> list[str]:
    return (EXAMPLES / name).read_text(encoding="utf-8").strip().split("\n")


def _corrupt(name: str, index: int, old: str, new: str) -> list[str]:
    """The example's lines, with line ``index`` (0-based) broken by replacing ``old`` by ``new``."""
    lines = _lines(name)
    assert old in lines[index], (name, index)
    return [*lines[:index], lines[index].replace(old, new, 1), *lines[index + 1 :]]


BAD_LINES = {  # example, 0-based line, the break: a stray character after a closing quote, an unclosed quote
    "netskope/transaction_w3c_with_fields_header.log": (1, '"Example Paste" US', '"Example Paste"US'),
    "netskope/transaction_log_streaming_csv.log": (0, '"Cloud Storage, All Internet",', '"Cloud Storage, All Internet"x,'),
    "cisco_umbrella/dns_logs_s3_export.log": (1, ',"Business Services"', ',"Business Services'),
    "paloalto/syslog_threat_csv.log": (
        0,
        '"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6)",',
        '"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6)"x,',
    ),
    "paloalto/cortex_cef_forwarding.log": (1, "CEF:0|Palo Alto Networks|LF|2.0|TRAFFIC|end|1|", "CEF:0|Palo Alto Networks|LF|2.0|TRAFFIC"),
}


@pytest.mark.parametrize("name", BAD_LINES)
def test_a_bad_line_is_rejected_alone_with_its_number(name: str):
    index, old, new = BAD_LINES[name]
    good = _lines(name)
    bad = _corrupt(name, index, old, new)
    vendor = name.split("/")[0]
    for source in (vendor, "auto"):
        outcomes = normalize_payload("\n".join(bad), source, "acme")
        expected = [o.kind for o in normalize_payload("\n".join(good), source, "acme")]
        expected[index] = "rejected"  # one outcome per line in these files
        assert [o.kind for o in outcomes] == expected, [o.summary() for o in outcomes]
        rejected = outcomes[index]
        assert (rejected.source, rejected.reason) == (vendor, RejectReason.MALFORMED)
        assert rejected.detail.startswith(f"line {index + 1}: "), rejected.detail
        assert rejected.raw == bad[index]  # the dead-letter queue gets the line as it was sent


def test_line_numbers_count_the_lines_before_the_first_record():
    bad = _corrupt("paloalto/syslog_threat_csv.log", 1, "THREAT,spyware,", 'THREAT,"spyware"x,')
    outcomes = normalize_payload("\n\r\n  \n" + "\n".join(bad), "auto", "acme")
    assert [o.kind for o in outcomes] == ["normalized", "rejected"]
    assert outcomes[1].detail.startswith("line 5: ")


def test_a_record_the_normalizer_rejects_names_its_line():
    lines = _lines("cisco_umbrella/dns_logs_s3_export.log")
    outcomes = normalize_payload("\n".join([lines[0], '"2026-03-12 11:30:06","too","few"', lines[1]]), "auto", "acme")
    assert [o.kind for o in outcomes] == ["normalized", "rejected", "normalized"]
    assert outcomes[1].detail == "line 2: an Umbrella record has at least 10 columns, got 3"


def test_an_unclosed_umbrella_quote_does_not_swallow_the_records_after_it():
    lines = _lines("cisco_umbrella/dns_logs_s3_export.log")
    unclosed = lines[0][: lines[0].index('"Phishing,Newly')] + '"Phishing'  # cut inside a quoted field
    outcomes = normalize_payload("\n".join([unclosed, lines[1], lines[2]]), "cisco_umbrella", "acme")
    assert [o.kind for o in outcomes] == ["rejected", "normalized", "normalized"]
    assert outcomes[0].raw == unclosed and outcomes[0].detail.startswith("line 1: not Umbrella CSV")
    # at the end of the file, too: the unclosed record is rejected, the ones before it stand
    outcomes = normalize_payload("\n".join([lines[1], lines[2], unclosed]), "cisco_umbrella", "acme")
    assert [o.kind for o in outcomes] == ["normalized", "normalized", "rejected"]
    assert outcomes[2].raw == unclosed and outcomes[2].detail.startswith("line 3: ")


def test_one_bad_line_of_newline_delimited_json():
    lines = [json.dumps(OKTA), json.dumps({**OKTA, "uuid": "second"})[:-20], json.dumps({**OKTA, "uuid": "third"})]
    for source in ("okta", "auto"):
        outcomes = normalize_payload("\n".join(lines), source, "acme")
        assert [o.kind for o in outcomes] == ["normalized", "rejected", "normalized"]
        assert (outcomes[1].reason, outcomes[1].raw) == (RejectReason.MALFORMED, lines[1])
        assert outcomes[1].detail.startswith("line 2: not JSON")
    # the first line broken, and blank lines before it
    outcomes = normalize_payload("\n\n" + "\n".join([lines[1], lines[0]]), "auto", "acme")
    assert [o.kind for o in outcomes] == ["rejected", "normalized"] and outcomes[0].detail.startswith("line 3: ")


def test_text_that_is_no_line_format_is_still_one_rejection():
    pretty = json.dumps(OKTA, indent=2)
    for body in (pretty[:-10], "hello\nworld\n", "<14>Mar 12 11:31:02 some-host something else"):
        (outcome,) = normalize_payload(body, "auto", "acme")
        assert (outcome.kind, outcome.reason, outcome.raw) == ("rejected", RejectReason.MALFORMED, body)


# 4. lines end at "\n" (and "\r\n") only: other line breaks stay inside their field -------------------

BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("char", BREAKS, ids=[f"U+{ord(c):04X}" for c in BREAKS])
def test_a_unicode_line_break_inside_a_field_does_not_split_the_record(char: str):
    def broken(name: str, index: int, old: str) -> tuple[str, int, list[str]]:
        """The example with ``char`` put inside a field of line ``index`` that its event keeps."""
        lines = _lines(name)
        assert old in lines[index]
        lines[index] = lines[index].replace(old, old[:4] + char + old[4:], 1)
        return name.split("/")[0], index, lines

    cases = [
        broken("netskope/transaction_w3c_with_fields_header.log", 1, "/api/v1/pastes"),  # line 0 is #Fields
        broken("netskope/transaction_log_streaming_csv.log", 0, "design-notes.pdf"),
        broken("paloalto/syslog_threat_csv.log", 0, "secure-login.example.net"),
        broken("cisco_umbrella/dns_logs_s3_export.log", 0, "login-verify.example.net"),
        broken("cisco_umbrella/proxy_logs_s3_export.log", 0, "free-fonts.example.net"),
    ]
    if char in "\u2028\u2029\x85":  # JSON strings may hold these raw (the others must be escaped)
        message = json.dumps({**OKTA, "displayMessage": f"Max sign{char}in attempts"}, ensure_ascii=False)
        cases.append(("okta", 0, [message, json.dumps({**OKTA, "uuid": "second"})]))
    for vendor, index, lines in cases:
        for source in (vendor, "auto"):
            outcomes = normalize_payload("\n".join(lines), source, "acme")
            assert len(outcomes) == len(lines), (vendor, source, [o.summary() for o in outcomes])
            assert outcomes[index].kind == "normalized", outcomes[index].summary()
            assert any(char in value for value in _strings(outcomes[index].summary())), (vendor, "the character stays in its field")


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_crlf_line_ends_are_tolerated():
    for name in (
        "netskope/transaction_w3c_with_fields_header.log",
        "paloalto/syslog_threat_csv.log",
        "cisco_umbrella/dns_logs_s3_export.log",
    ):
        body = (EXAMPLES / name).read_text(encoding="utf-8")
        unix = [o.summary() for o in normalize_payload(body, "auto", "acme")]
        assert [o.summary() for o in normalize_payload(body.replace("\n", "\r\n"), "auto", "acme")] == unix, name
    ndjson = json.dumps(OKTA) + "\r\n" + json.dumps({**OKTA, "uuid": "second"}) + "\r\n"
    assert _kinds(ndjson) == [("normalized", None)] * 2


# 5. the CLI: invalid UTF-8 in a file, and a reader that goes away ------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True)


def _utf8_broken(name: str, index: int, old: str) -> bytes:
    """The example with one invalid UTF-8 byte (0xff) inside ``old`` on line ``index``."""
    lines = _lines(name)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, old[:3] + "\udcff" + old[3:], 1)
    return "\n".join(lines).encode("utf-8", "surrogateescape")


INVALID_UTF8 = {  # file -> (its bytes, the outcome kinds expected)
    "okta.json": (json.dumps(OKTA).replace("Max sign", "Max\udcff sign").encode("utf-8", "surrogateescape"), ["rejected"]),
    "okta.ndjson": (
        "\n".join([json.dumps(OKTA), json.dumps({**OKTA, "uuid": "x\udcff"}, ensure_ascii=False), json.dumps(OKTA)]).encode(
            "utf-8", "surrogateescape"
        ),
        ["normalized", "rejected", "normalized"],
    ),
    "w3c.log": (
        _utf8_broken("netskope/transaction_w3c_with_fields_header.log", 1, "jordan.lee"),
        ["ignored", "rejected", "normalized"],
    ),
    "umbrella.log": (_utf8_broken("cisco_umbrella/dns_logs_s3_export.log", 1, "intranet"), ["normalized", "rejected", "normalized"]),
    "panos.log": (_utf8_broken("paloalto/syslog_threat_csv.log", 1, "sam.patel"), ["normalized", "rejected"]),
}


@pytest.mark.parametrize("name", INVALID_UTF8)
def test_invalid_utf8_in_a_file_rejects_its_record_and_the_cli_carries_on(tmp_path: Path, name: str):
    data, kinds = INVALID_UTF8[name]
    path = tmp_path / name
    path.write_bytes(data)
    result = _cli("normalize", "--source", "auto", "--tenant", "t", str(path))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    printed = [json.loads(line) for line in result.stdout.split("\n") if line]  # JSON lines end at "\n" only
    assert [line.get("outcome", "normalized") for line in printed] == kinds
    # the same, in process: the CLI reads files with surrogateescape, so the invalid byte arrives as U+DCFF
    outcomes = normalize_payload(data.decode("utf-8", "surrogateescape"), "auto", "t")
    assert [o.kind for o in outcomes] == kinds
    rejected = next(o for o in outcomes if o.kind == "rejected")
    assert rejected.reason == RejectReason.MALFORMED and "\udcff" in rejected.raw  # nothing lost: the byte is kept


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path: Path):
    many = tmp_path / "many.ndjson"  # far more output than a pipe buffers
    many.write_text("\n".join(json.dumps({**OKTA, "uuid": str(n)}) for n in range(3000)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "normalize", "--source", "auto", "--tenant", "t", str(many)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE, stderr  # as if killed by SIGPIPE, the shell's convention
    assert json.loads(first)["class_uid"] == 3001
    assert stderr == ""
    # and through a shell pipeline, as people type it
    shell = subprocess.run(
        f"{shlex.quote(sys.executable)} -m cli normalize --source auto --tenant t {shlex.quote(str(many))} | head -1",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert shell.returncode == 0 and shell.stderr == "" and len(shell.stdout.splitlines()) == 1, shell.stderr


# The table: every hostile case above, checked through normalize_payload and through the CLI ----------

NORMALIZED = ("normalized", None)


def _rejected(reason: str) -> tuple[str, str]:
    return ("rejected", reason)


def _ignored(reason: str) -> tuple[str, str]:
    return ("ignored", reason)


def _text(*lines: str) -> bytes:
    return "\n".join(lines).encode("utf-8", "surrogateescape")  # surrogateescape: "\udcff" is the byte 0xff


def _with(name: str, index: int, old: str, new: str) -> bytes:
    return _text(*_corrupt(name, index, old, new))


W3C, NS_CSV = "netskope/transaction_w3c_with_fields_header.log", "netskope/transaction_log_streaming_csv.log"
UMBRELLA, PANOS, CEF = "cisco_umbrella/dns_logs_s3_export.log", "paloalto/syslog_threat_csv.log", "paloalto/cortex_cef_forwarding.log"
PROOFPOINT_EMPTY = {
    "queryEndTime": "2026-03-10T09:00:00Z",
    "messagesDelivered": [],
    "messagesBlocked": [],
    "clicksPermitted": [],
    "clicksBlocked": [],
}
OKTA_LINE = json.dumps(OKTA)

HOSTILE: dict[str, tuple[bytes, list[tuple[str, str | None]]]] = {
    # 1. shapes a vendor's detect or records did not expect
    "netskope type is a list": (_text(json.dumps([OKTA, {"timestamp": 1773000000, "type": ["alert"]}, NETSKOPE])),
                                [NORMALIZED, _rejected("unknown_source"), NORMALIZED]),
    "netskope type is an object": (_text(json.dumps([OKTA, {"timestamp": 1, "type": {"a": 1}, "alert_type": "dlp"}, NETSKOPE])),
                                   [NORMALIZED, _rejected("unknown_source"), NORMALIZED]),
    "proofpoint group is a number": (_text(json.dumps({**PROOFPOINT_EMPTY, "clicksPermitted": 5})), [_rejected("unknown_source")]),
    "json scalars and nested arrays": (_text(json.dumps([OKTA, None, 5, "x", [], [[]], {"type": []}])),
                                       [NORMALIZED] + [_rejected("unknown_source")] * 6),
    "null": (_text("null"), [_rejected("unknown_source")]),
    "nested 300 deep": (_text("[" * 300 + "]" * 300), [_rejected("malformed")]),
    "an integer of 5000 digits": (_text(OKTA_LINE.replace('"published": ', '"published": ' + "9" * 5000 + ', "was": ', 1)),
                                  [_rejected("malformed")]),
    "an infinite timestamp": (_text(json.dumps({**NETSKOPE, "timestamp": "INF"}).replace('"INF"', "1e999")), [_rejected("wrong_types")]),
    # 2. empty pages, and bodies with nothing in them
    "an empty array": (_text("[]"), [_ignored("empty")]),
    "an empty Graph page": (_text('{"value": []}'), [_ignored("empty")]),
    "an empty Event Hub batch": (_text('{"records": []}'), [_ignored("empty")]),
    "an empty Alerts API page": (_text('{"meta": {}, "resources": [], "errors": []}'), [_ignored("empty")]),
    "an empty Netskope page": (_text('{"ok": 1, "result": []}'), [_ignored("empty")]),
    "an empty Proofpoint response": (_text(json.dumps(PROOFPOINT_EMPTY)), [_ignored("empty")]),
    "an empty body": (b"", [_rejected("malformed")]),
    "blank lines only": (b"\n  \n\r\n", [_rejected("malformed")]),
    # 3. one bad line of a line format
    "ndjson, a truncated line": (_text(OKTA_LINE, OKTA_LINE[:-30], OKTA_LINE), [NORMALIZED, _rejected("malformed"), NORMALIZED]),
    "ndjson, a NUL in a string": (_text(OKTA_LINE, OKTA_LINE.replace("Max sign", "Max\x00sign")), [NORMALIZED, _rejected("malformed")]),
    "ndjson, an oversized line": (_text(OKTA_LINE, json.dumps({**OKTA, "displayMessage": "x" * 140_000}), OKTA_LINE),
                                  [NORMALIZED, _rejected("oversized"), NORMALIZED]),
    "w3c, a stray quote": (_with(W3C, 1, '"Example Paste" US', '"Example Paste"US'), [_ignored("not_event"), _rejected("malformed"), NORMALIZED]),
    "w3c, a bare CR in a field": (_with(W3C, 1, "/api/v1/pastes", "/api/v1\r/pastes"), [_ignored("not_event"), _rejected("malformed"), NORMALIZED]),
    "netskope csv, a stray quote": (_with(NS_CSV, 0, '"Cloud Storage, All Internet",', '"Cloud Storage, All Internet"x,'),
                                    [_rejected("malformed"), NORMALIZED]),
    "umbrella, an unclosed quote": (_with(UMBRELLA, 0, '"Phishing,Newly Seen Domains"', '"Phishing,Newly Seen Domains'),
                                    [_rejected("malformed"), NORMALIZED, NORMALIZED]),
    "umbrella, too few columns": (_text(_lines(UMBRELLA)[0], '"2026-03-12 11:31:40","too","few"', _lines(UMBRELLA)[1]),
                                  [NORMALIZED, _rejected("malformed"), NORMALIZED]),
    "pan-os csv, a stray quote": (_with(PANOS, 1, "THREAT,spyware,", 'THREAT,"spyware"x,'), [NORMALIZED, _rejected("malformed")]),
    "pan-os cef, a cut header": (_with(CEF, 0, "|THREAT|virus|4|", "|THREAT"), [_rejected("malformed"), NORMALIZED, _ignored("unsupported_event_type")]),
    "a BOM and blank lines first": (b"\xef\xbb\xbf\n\n" + _with(PANOS, 0, "THREAT,url,", 'THREAT,"url"x,'), [_rejected("malformed"), NORMALIZED]),
    # 4. Unicode line breaks inside a field
    "ndjson, U+2028 in a string": (_text(OKTA_LINE.replace("Max sign", "Max\u2028sign"), OKTA_LINE), [NORMALIZED, NORMALIZED]),
    "ndjson, U+0085 in a string": (_text(OKTA_LINE.replace("Max sign", "Max\x85sign"), OKTA_LINE), [NORMALIZED, NORMALIZED]),
    "w3c, U+2029 in a field": (_with(W3C, 1, "/api/v1/pastes", "/api/\u2029v1/pastes"), [_ignored("not_event"), NORMALIZED, NORMALIZED]),
    "w3c, \\x0b in a field": (_with(W3C, 1, "/api/v1/pastes", "/api/\x0bv1/pastes"), [_ignored("not_event"), NORMALIZED, NORMALIZED]),
    "netskope csv, \\x1c in a field": (_with(NS_CSV, 0, "design-notes.pdf", "design\x1cnotes.pdf"), [NORMALIZED, NORMALIZED]),
    "umbrella, U+2028 in a field": (_with(UMBRELLA, 0, "Hamburg Office", "Hamburg\u2028Office"), [NORMALIZED] * 3),
    "pan-os, \\x0c in a field": (_with(PANOS, 0, "secure-login.example.net", "secure-login\x0c.example.net"), [NORMALIZED, NORMALIZED]),
    # 5. invalid UTF-8 bytes (lone surrogates once read)
    "ndjson, an invalid byte": (_text(OKTA_LINE, OKTA_LINE.replace("Max sign", "Max\udcffsign"), OKTA_LINE),
                                [NORMALIZED, _rejected("malformed"), NORMALIZED]),
    "w3c, an invalid byte": (_with(W3C, 1, "jordan.lee", "jordan\udcff.lee"), [_ignored("not_event"), _rejected("malformed"), NORMALIZED]),
    "json, an invalid byte": (_text(OKTA_LINE.replace("Max sign", "Max\udcffsign")), [_rejected("malformed")]),
}  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_payloads_through_normalize_payload(case: str):
    data, expected = HOSTILE[case]
    outcomes = normalize_payload(data.decode("utf-8", "surrogateescape"), "auto", "t")
    assert [(o.kind, getattr(o, "reason", None)) for o in outcomes] == expected, [o.summary() for o in outcomes]
    for outcome in outcomes:
        if isinstance(outcome, RejectedOutcome):
            assert outcome.detail and (outcome.raw or not data)  # a reason a person can act on, and nothing lost


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_payloads_through_the_cli(tmp_path: Path, case: str):
    data, expected = HOSTILE[case]
    path = tmp_path / "payload"
    path.write_bytes(data)
    result = _cli("normalize", "--source", "auto", "--tenant", "t", str(path))
    assert (result.returncode, result.stderr) == (0, "")  # no traceback, and rejected records are output, not failures
    printed = [json.loads(line) for line in result.stdout.split("\n") if line]  # JSON lines end at "\n" only
    assert [(line.get("outcome", "normalized"), line.get("reason")) for line in printed] == expected


def test_a_schema_failure_names_the_line_and_the_field_once():
    from handlers.events import Header, build
    from handlers.ingest import normalize_record
    from handlers.records import Context, Line

    class Sloppy:
        """A vendor whose event breaks the schema (a port out of range)."""

        SOURCE = "sloppy"

        @staticmethod
        def normalize(record: Any, ctx: Context) -> list[dict[str, Any]]:
            return [build(ctx, Header("V", "P", 1_790_000_000_000), class_uid=4001, activity_id=1, severity_id=1,
                          dst_endpoint={"port": 70_000})]  # fmt: skip

    (outcome,) = normalize_record(Line("a line", {"x": 1}, 3), Sloppy(), "acme", "sloppy", 0)  # type: ignore[arg-type]
    assert outcome.kind == "rejected" and outcome.reason == "wrong_types"
    assert outcome.detail.startswith("line 3: dst_endpoint.port: ") and outcome.detail.count("dst_endpoint.port") == 1
