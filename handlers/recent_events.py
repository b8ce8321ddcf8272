"""The recent-events buffer, pure core: each batch's normalized events, kept a short while in the
claims bucket so that re-evaluation can re-run a tenant's new or changed rules over them
(``handlers.reevaluation``).

One object per batch (one PUT per ~300 events, not one write per event), under the tenant's
``recent/`` prefix (``claim_check.Kind.RECENT``)::

    recent/<tenant>/<oldest event ms, 13 digits>-<batch id>.<rule-set version>.<event count>.json

- the key sorts a tenant's batches oldest events first, which is the order re-evaluation re-runs
  them in (thresholds count in event time, and the oldest batches are the nearest to expiring);
- it carries the version the batch was evaluated under, so batches evaluated under the current
  version are skipped without being read, and the event count, so a re-evaluation is bounded
  (``plan``) without reading what it will not re-run;
- the same batch always gets the same key: a retried evaluation overwrites, never duplicates.

The body: ``{"version", "rules": {rule id: fingerprint}, "events": [...]}``: the fingerprints of
the rules the batch was evaluated with, so that a re-run evaluates only the rules that are new or
changed since (``ruleset.changed_rules``). Objects expire by the bucket's lifecycle rule for the
prefix; since lifecycle deletion can lag, readers also skip objects older than the retention.

Pure: listings and bodies are passed in; the adapter lists and reads the bucket.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from handlers import claim_check

MAX_EVENT_MS = 10**13 - 1  # 13 digits: event times beyond (year 2286) sort last
_NAME = re.compile(r"\A(?P<ms>\d{13})-(?P<batch>[A-Za-z0-9_-]{1,80})\.(?P<version>[A-Za-z0-9_-]{1,64})\.(?P<count>\d{1,7})\.json\Z")
_SAFE = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


def _safe(text: str) -> str:
    """A key segment: as given when it is plain, else its hash (nothing in a key can leave its prefix)."""
    return text if _SAFE.match(text) else hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _event_ms(event: dict[str, Any]) -> int:
    at = event.get("time")
    return min(max(at, 0), MAX_EVENT_MS) if isinstance(at, int) and not isinstance(at, bool) else 0


def prefix(tenant: str) -> str:
    """Where a tenant's buffered batches live (its own prefix only)."""
    return claim_check.key(claim_check.Kind.RECENT, tenant, "")


def key(tenant: str, batch_id: str, version: str, events: list[dict[str, Any]]) -> str:
    oldest = min((_event_ms(e) for e in events), default=0)
    return f"{prefix(tenant)}{oldest:013d}-{_safe(batch_id)}.{_safe(version)}.{len(events)}.json"


@dataclass(frozen=True)
class Entry:
    """A buffered batch as its key describes it."""

    key: str
    version: str
    events: int


def entry(tenant: str, object_key: str) -> Entry | None:
    """What a listed key is, or None when it is not one of this tenant's buffered batches."""
    name = object_key.removeprefix(prefix(tenant))
    found = _NAME.match(name) if name != object_key else None
    return Entry(object_key, found["version"], int(found["count"])) if found else None


def encode(version: str, rules: dict[str, str], events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"version": version, "rules": rules, "events": events}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(body: bytes) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The fingerprints of the rules a batch was evaluated with, and its events."""
    document = json.loads(body)
    rules, events = document.get("rules"), document.get("events")
    if not isinstance(rules, dict) or not isinstance(events, list):
        raise ValueError("not a buffered batch: it has no rules object or no events list")
    return {str(k): str(v) for k, v in rules.items()}, [e for e in events if isinstance(e, dict)]


@dataclass
class Plan:
    """The batches one re-evaluation re-runs, in order, and where the next one starts."""

    batches: list[Entry] = field(default_factory=list)
    events: int = 0
    cursor: str = ""  # the last key this plan got past (re-run or skipped): the next one lists after it
    more: bool = False  # stopped by the bound: batches are left for the next re-evaluation
    skipped_current: int = 0  # evaluated under the current version already
    skipped_expired: int = 0  # older than the buffer's retention (its lifecycle rule lags)


def plan(tenant: str, listing: Iterable[tuple[str, float]], version: str, cursor: str, not_before: float, max_events: int) -> Plan:
    """Choose, from a listing of the tenant's buffer after ``cursor`` ((key, last modified) in key
    order: oldest events first), the batches to re-run under ``version``: those evaluated under
    another version and written at or after ``not_before``, at most ``max_events`` events (always
    at least one batch, so that every re-evaluation makes progress). Stops reading the listing as
    soon as the bound is reached."""
    result = Plan(cursor=cursor)
    for object_key, modified in listing:
        found = entry(tenant, object_key)
        if found is not None and found.version != version and modified >= not_before:
            if result.batches and result.events + found.events > max_events:
                result.more = True
                return result
            result.batches.append(found)
            result.events += found.events
        elif found is not None and found.version == version:
            result.skipped_current += 1
        elif found is not None:
            result.skipped_expired += 1
        result.cursor = object_key
    return result
