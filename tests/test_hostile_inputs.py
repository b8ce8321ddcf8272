"""Hostile and broken payloads: every raw record still ends in exactly one outcome, a broken record
never takes its neighbours down, and the CLI prints one JSON line per outcome without a traceback.

The table at the end is checked twice: through ``normalize_payload`` and through
``python -m cli normalize --source auto``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from emulator.stack import EXAMPLES
from handlers import vendors
from handlers.ingest import normalize_payload
from handlers.outcomes import IgnoreReason, RejectReason
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
@given(st.lists(JSON_VALUES, max_size=4))
def test_auto_gives_every_array_element_exactly_one_outcome(records: list[Any]):
    outcomes = normalize_payload(json.dumps([OKTA, *records]), "auto", "acme")
    assert outcomes[0].kind == "normalized"  # the good neighbour is evaluated, whatever follows it
    assert len(outcomes) >= len(records) + 1


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
