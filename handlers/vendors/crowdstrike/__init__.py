"""CrowdStrike Falcon, one module per feed: the Streaming API (``streaming``), the Alerts API v2
(``alerts``) and Falcon Data Replicator records (``fdr``); mappings they share are in ``falcon``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.records import Context, Event
from handlers.vendors.crowdstrike import alerts, fdr, streaming

SOURCE = "crowdstrike"


def records(payload: Any) -> Iterable[Any]:
    """Alerts API responses wrap alerts in ``resources``; everything else is one record per item."""
    if isinstance(payload, dict) and isinstance(payload.get("resources"), list):
        yield from payload["resources"]
    elif isinstance(payload, list):
        yield from payload
    else:
        yield payload


def detect(record: Any) -> bool:
    return isinstance(record, dict) and (streaming.detect(record) or fdr.detect(record) or alerts.detect(record))


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    """A named ``crowdstrike`` record goes to the feed whose envelope it has; FDR has none."""
    if streaming.has_envelope(record):
        return [streaming.normalize(record, ctx)]
    if alerts.has_envelope(record):
        return [alerts.normalize(record, ctx)]
    return [fdr.normalize(record, ctx)]
