"""The claim-check module: one pointer shape, one key scheme, reads confined to the reader's tenant."""

from __future__ import annotations

import json

import pytest

from handlers import claim_check
from handlers.claim_check import ClaimCheckError, Kind, Pointer


class Bucket:
    """An in-memory ObjectStore."""

    def __init__(self, name: str = "claims") -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = (body, content_type)

    def get(self, key: str) -> bytes:
        return self.objects[key][0]


def test_put_then_get_round_trips_through_the_pointer() -> None:
    bucket = Bucket()
    pointer = claim_check.put(bucket, Kind.EVENTS, "acme", "e1.json", b'{"uid":"e1"}', uid="e1")
    assert pointer == Pointer("claims", "events/acme/e1.json", 12, "e1")
    assert bucket.objects["events/acme/e1.json"][1] == "application/json"
    wire = json.loads(pointer.to_json())
    assert wire == {"claim_check": {"bucket": "claims", "key": "events/acme/e1.json", "uid": "e1", "bytes": 12}}
    assert claim_check.pointer_of(wire) == pointer
    assert claim_check.get(bucket, pointer, Kind.EVENTS, "acme") == b'{"uid":"e1"}'
    assert pointer.url == "s3://claims/events/acme/e1.json"


def test_things_that_are_not_pointers() -> None:
    assert claim_check.pointer_of({"uid": "e1"}) is None
    assert claim_check.pointer_of([{"claim_check": {}}]) is None  # a list of matches is the matches themselves
    for bad in ({"claim_check": "s3://x"}, {"claim_check": {"bucket": "b"}}, {"claim_check": {"bucket": "b", "key": 1, "bytes": 1}}):
        with pytest.raises(ClaimCheckError):
            claim_check.pointer_of(bad)


@pytest.mark.parametrize(
    "pointer",
    [
        Pointer("claims", "events/globex/e1.json", 1),  # another tenant's event
        Pointer("claims", "events/acme-evil/e1.json", 1),  # a tenant whose id starts like ours
        Pointer("claims", "matches/acme/b.json", 1),  # another kind of object
        Pointer("elsewhere", "events/acme/e1.json", 1),  # another bucket
        Pointer("claims", "events/acme", 1),  # not under the tenant's prefix at all
        Pointer("claims", "events/acme/../globex/e1.json", 1),  # out of the prefix by a dot segment
    ],
)
def test_a_reader_only_follows_pointers_into_its_own_tenant_and_kind(pointer: Pointer) -> None:
    bucket = Bucket()
    bucket.put(pointer.key, b"secret", "application/json")
    with pytest.raises(ClaimCheckError):
        claim_check.get(bucket, pointer, Kind.EVENTS, "acme")


def test_the_key_scheme() -> None:
    assert claim_check.key(Kind.MATCHES, "acme", "b1.json") == "matches/acme/b1.json"
    assert claim_check.key(Kind.REJECTED, "", "m-0.txt") == "rejected/unknown/m-0.txt"  # a record that named no tenant
    assert claim_check.key(Kind.REJECTED, "../Evil Tenant", "m-0.txt") == "rejected/unknown/m-0.txt"
    assert claim_check.PREFIXES == {"events": "events/", "rejected": "rejected/", "matches": "matches/", "recent": "recent/"}
