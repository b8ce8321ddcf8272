"""Claim-check: what is too big to travel inside a message or a Step Functions payload is stored in
the claims bucket, and a pointer travels instead (StreamAlert's lesson: pass a reference, not the
payload).

One pointer shape everywhere: ``{"claim_check": {"bucket", "key", "bytes"[, "uid"]}}``. One key
scheme: ``<prefix><tenant>/<name>``, with one prefix per kind of object. The Terraform stack's IAM
grants are built from the same prefixes (``local.claim_check_prefixes`` in
``terraform/coachflow/storage.tf``; a test keeps the two equal). Readers only follow a pointer into
their own tenant's prefix of the bucket they were configured with: a crafted execution input cannot
make a function read another tenant's objects.

Pure: the bucket is an ``ObjectStore`` the adapter passes in (``handlers.aws.Bucket`` in Lambda).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from handlers.tenancy import TENANT_ID


class Kind(StrEnum):
    """What a claim-checked object is; its value is the key prefix."""

    EVENTS = "events/"  # normalized events too big for a batch (normalize writes, CheckEventsForRuleMatch reads)
    REJECTED = "rejected/"  # rejected raw records too big for a dead letter (normalize writes, operators read)
    MATCHES = "matches/"  # match lists too big for a state output (CheckEventsForRuleMatch writes, TriggerNotifications reads)
    RECENT = "recent/"  # each batch's events, kept a short while for re-evaluation (CheckEventsForRuleMatch writes and reads)


PREFIXES = {kind.name.lower(): kind.value for kind in Kind}  # what Terraform's local.claim_check_prefixes must equal
_CONTENT_TYPES = {
    Kind.EVENTS: "application/json",
    Kind.MATCHES: "application/json",
    Kind.RECENT: "application/json",
    Kind.REJECTED: "text/plain; charset=utf-8",
}


class ClaimCheckError(ValueError):
    """A pointer that is malformed or points outside what its reader may follow."""


class ObjectStore(Protocol):
    """A bucket: where claim-checked objects are put and got."""

    @property
    def name(self) -> str: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class Pointer:
    bucket: str
    key: str
    bytes: int
    uid: str | None = None  # the event's uid, for claim-checked events (batches list uids)

    def to_dict(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"bucket": self.bucket, "key": self.key}
        if self.uid is not None:
            inner["uid"] = self.uid
        inner["bytes"] = self.bytes
        return {"claim_check": inner}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def pointer_of(item: Any) -> Pointer | None:
    """The pointer an item is, or None when the item is the thing itself (not a claim-check)."""
    if not isinstance(item, dict) or "claim_check" not in item:
        return None
    inner = item["claim_check"]
    if not isinstance(inner, dict):
        raise ClaimCheckError("a claim_check must be an object")
    bucket, key, size, uid = inner.get("bucket"), inner.get("key"), inner.get("bytes"), inner.get("uid")
    if not isinstance(bucket, str) or not isinstance(key, str) or not isinstance(size, int) or not isinstance(uid, (str, type(None))):
        raise ClaimCheckError("a claim_check names its bucket and key (strings) and its size in bytes")
    return Pointer(bucket, key, size, uid)


def key(kind: Kind, tenant: str, name: str) -> str:
    """Where an object of this kind for this tenant lives. Tenants that are not valid ids (a raw
    record whose envelope named none) share ``unknown``."""
    owner = tenant if TENANT_ID.match(tenant) else "unknown"
    return f"{kind.value}{owner}/{name}"


def put(store: ObjectStore, kind: Kind, tenant: str, name: str, body: bytes, uid: str | None = None) -> Pointer:
    object_key = key(kind, tenant, name)
    store.put(object_key, body, _CONTENT_TYPES[kind])
    return Pointer(store.name, object_key, len(body), uid)


def get(store: ObjectStore, pointer: Pointer, kind: Kind, tenant: str) -> bytes:
    """The object a pointer names, if it is this tenant's object of this kind in this store."""
    segments = pointer.key.split("/")
    within = pointer.key.startswith(key(kind, tenant, "")) and not {".", ".."} & set(segments)  # no way out of the prefix
    if pointer.bucket != store.name or not within:
        raise ClaimCheckError(f"claim-check {pointer.url} is not a {kind.name.lower()} object of tenant {tenant}")
    return store.get(pointer.key)
