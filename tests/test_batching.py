"""Batching under the Step Functions payload cap: property tests over unicode, escapes and huge
fields (the cap is measured in UTF-8 bytes of the whole input, envelope included)."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.stack import EXAMPLES
from handlers import batching, claim_check
from handlers.ingest import normalize_payload
from handlers.outcomes import NormalizedOutcome

TENANTS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True)
# any unicode, including what JSON must escape (quotes, backslashes, control characters) and astral planes
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=400)


@st.composite
def items(draw, max_blob: int = 3000) -> batching.Item:
    uid = draw(st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
    event = {"uid": uid, "time": draw(st.integers(0, 2**41)), "note": draw(TEXT),
             "blob": draw(TEXT) * draw(st.integers(0, max_blob // 50))}  # fmt: skip
    return batching.Item(uid, event["time"], json.dumps(event, ensure_ascii=False, separators=(",", ":")))


class _Bucket:
    """An in-memory claim_check.ObjectStore."""

    name = "bucket"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body

    def get(self, key: str) -> bytes:
        return self.objects[key]


def _claims() -> tuple[dict[str, str], batching.ClaimCheck]:
    stored: dict[str, str] = {}
    bucket = _Bucket()

    def claim(uid: str, body: str) -> str:
        stored[uid] = body
        return claim_check.put(bucket, claim_check.Kind.EVENTS, "t", f"{uid}.json", body.encode(), uid=uid).to_json()

    return stored, claim


def _check(tenant: str, batch_list: list[batching.Batch], given_items: list[batching.Item], cap: int, stored: dict[str, str]) -> None:
    unique = {i.uid: i for i in reversed(given_items)}  # the first copy of a uid wins
    seen = []
    for batch in batch_list:
        assert batch.size <= cap  # the property
        assert len(batch.payload.encode("utf-8")) == batch.size
        document = json.loads(batch.payload)
        assert document["tenant_id"] == tenant and document["batch_id"] == batch.batch_id and document["mode"] == "events"
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", batch.execution_name)
        for event in document["events"]:
            uid = event["claim_check"]["uid"] if "claim_check" in event else event["uid"]
            seen.append(uid)
            if "claim_check" in event:
                assert stored[uid] == unique[uid].json  # the pointer leads to the whole event
            else:
                assert json.dumps(event, ensure_ascii=False, separators=(",", ":")) == unique[uid].json
    assert sorted(seen) == sorted(unique)  # every event exactly once
    assert seen == [i.uid for i in sorted(unique.values(), key=lambda i: (i.time, i.uid))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tenant=TENANTS, given_items=st.lists(items(), max_size=40), cap=st.integers(300, 20_000))
def test_no_batch_ever_exceeds_the_cap(tenant: str, given_items: list[batching.Item], cap: int):
    stored, claim = _claims()
    _check(tenant, batching.plan(tenant, given_items, cap=cap, claim_check=claim), given_items, cap, stored)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tenant=TENANTS, given_items=st.lists(items(max_blob=60_000), min_size=1, max_size=30))
def test_the_real_cap_with_huge_fields(tenant: str, given_items: list[batching.Item]):
    stored, claim = _claims()
    batches = batching.plan(tenant, given_items, claim_check=claim)
    _check(tenant, batches, given_items, batching.PAYLOAD_CAP, stored)


def test_an_event_larger_than_any_batch_travels_as_a_pointer():
    huge = batching.Item("f" * 32, 1, json.dumps({"uid": "f" * 32, "blob": "x" * 300_000}))
    small = batching.Item("a" * 32, 2, json.dumps({"uid": "a" * 32}))
    stored, claim = _claims()
    (batch,) = batching.plan("acme", [huge, small], claim_check=claim)
    events = json.loads(batch.payload)["events"]
    assert events[0] == {"claim_check": {"bucket": "bucket", "key": f"events/t/{'f' * 32}.json", "uid": "f" * 32, "bytes": len(huge.json)}}
    assert events[1] == {"uid": "a" * 32}
    assert stored["f" * 32] == huge.json


def test_batches_fill_at_least_90_percent_when_enough_events_wait():
    events = []
    for path in sorted(EXAMPLES.glob("*/*")):
        if path.name != "INDEX.md":
            events += [o for o in normalize_payload(path.read_text(encoding="utf-8"), "auto", "acme") if isinstance(o, NormalizedOutcome)]
    rng = random.Random(7)
    pool = []
    for n in range(6000):  # the example mix, each made a distinct event
        o = rng.choice(events)
        uid = f"{n:032x}"
        pool.append(batching.Item(uid, o.time + n, o.event_json.replace(o.uid, uid)))
    batches = batching.plan("acme", pool)
    assert len(batches) >= 3
    for batch in batches[:-1]:
        assert batch.size / batching.PAYLOAD_CAP >= 0.90
        assert batch.size <= batching.PAYLOAD_CAP


def test_the_same_events_give_the_same_batches_in_any_order():
    pool = [batching.Item(f"{n:032x}", n % 7, json.dumps({"uid": f"{n:032x}", "pad": "é" * (n % 300)})) for n in range(3000)]
    first = batching.plan("acme", pool)
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    again = batching.plan("acme", shuffled + pool[:10])  # duplicates (redeliveries) change nothing
    assert [(b.batch_id, b.payload) for b in first] == [(b.batch_id, b.payload) for b in again]
    assert len({b.batch_id for b in first}) == len(first) > 1
    other_tenant = batching.plan("globex", pool)
    assert not {b.batch_id for b in first} & {b.batch_id for b in other_tenant}


def test_without_a_claim_check_an_oversized_event_is_an_error():
    huge = batching.Item("f" * 32, 1, json.dumps({"blob": "x" * 300_000}))
    with pytest.raises(ValueError, match="larger than a batch can hold"):
        batching.plan("acme", [huge])
