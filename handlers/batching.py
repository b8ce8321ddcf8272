"""Stage 1b, pure core: normalized events -> Step Functions inputs under the payload cap.

An execution input is the exact string we send to StartExecution::

    {"mode":"events","tenant_id":"acme","batch_id":"<32 hex>","events":[<event>,<event>,...]}

Its UTF-8 size, envelope included, must leave room for the wrapper Step Functions puts around it
when it schedules CheckEventsForRuleMatch (``handlers.limits.EXECUTION_INPUT_BYTES``). Each event's compact JSON is
measured once (as bytes) and batches are filled greedily, so every batch except the last of a run is
filled to within one event of the cap. Events are sorted by (time, uid) and the batch id is a hash of
the uids it carries: the same events always give the same batches, ids and execution names, which
makes StartExecution idempotent for redelivered messages.

An event too large for any batch is stored by the ``claim_check`` callback (the adapter puts it in
the claims bucket, ``handlers.claim_check``) and travels as the pointer the callback returns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable

from handlers.limits import EXECUTION_INPUT_BYTES

PAYLOAD_CAP = EXECUTION_INPUT_BYTES  # what a batch (an execution input) may weigh, in UTF-8 bytes
_ID_LEN = 32

ClaimCheck = Callable[[str, str], str]  # (uid, event_json) -> pointer JSON


@dataclass(frozen=True)
class Item:
    uid: str
    time: int
    json: str


@dataclass(frozen=True)
class Batch:
    tenant_id: str
    batch_id: str
    uids: tuple[str, ...]
    payload: str  # the execution input, byte-exact

    @property
    def size(self) -> int:
        return len(self.payload.encode("utf-8"))

    @property
    def execution_name(self) -> str:
        # <= 80 characters of [A-Za-z0-9-_]: tenant ids are [a-z0-9-]{1,32}
        return f"{self.tenant_id}-{self.batch_id}"


def _envelope(tenant_id: str, batch_id: str, mode: str = "events") -> tuple[str, str]:
    head = json.dumps({"mode": mode, "tenant_id": tenant_id, "batch_id": batch_id}, separators=(",", ":"))
    return head[:-1] + ',"events":[', "]}"


def overhead(tenant_id: str) -> int:
    head, tail = _envelope(tenant_id, "0" * _ID_LEN)
    return len(head.encode("utf-8")) + len(tail.encode("utf-8"))


def batch_id(tenant_id: str, uids: Iterable[str]) -> str:
    digest = hashlib.sha256(tenant_id.encode("utf-8"))
    for uid in uids:
        digest.update(b"\n" + uid.encode("utf-8"))
    return digest.hexdigest()[:_ID_LEN]


def plan(
    tenant_id: str,
    items: Iterable[Item],
    cap: int = PAYLOAD_CAP,
    claim_check: ClaimCheck | None = None,
) -> list[Batch]:
    """Deterministic, byte-capped batches of one tenant's events (duplicates by uid dropped)."""
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.uid, item)
    ordered = sorted(unique.values(), key=lambda i: (i.time, i.uid))
    budget = cap - overhead(tenant_id)
    groups: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    used = 0
    for item in ordered:
        body = item.json
        size = len(body.encode("utf-8"))
        if size > budget:
            if claim_check is None:
                raise ValueError(f"event {item.uid} is {size} bytes, larger than a batch can hold ({budget})")
            body = claim_check(item.uid, item.json)
            size = len(body.encode("utf-8"))
        extra = size + (1 if current else 0)  # the comma between events
        if current and used + extra > budget:
            groups.append(current)
            current, used, extra = [], 0, size
        current.append((item.uid, body))
        used += extra
    if current:
        groups.append(current)
    batches = []
    for group in groups:
        uids = tuple(uid for uid, _ in group)
        bid = batch_id(tenant_id, uids)
        head, tail = _envelope(tenant_id, bid)
        batches.append(Batch(tenant_id, bid, uids, head + ",".join(body for _, body in group) + tail))
    return batches
