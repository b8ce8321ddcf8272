"""Every raw record ends in exactly one outcome: normalized, ignored (with a reason) or rejected
(with a reason). Normalizers raise ``Ignored``/``Rejected``; the ingest stage turns whatever
happens into an ``Outcome``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

# Rejection reasons: the record is not usable as sent. Each one reaches the dead-letter queue.
MALFORMED = "malformed"  # not JSON, not a line format the source uses
UNKNOWN_SOURCE = "unknown_source"  # no normalizer for the named source, or auto-detection failed
MISSING_TENANT = "missing_tenant"  # the message envelope names no (valid) tenant
WRONG_TYPES = "wrong_types"  # a field the normalizer needs has the wrong type or format
MISSING_FIELD = "missing_field"  # a field the normalizer needs is absent
OVERSIZED = "oversized"  # the record is larger than coachflow accepts
REJECTION_REASONS = (MALFORMED, UNKNOWN_SOURCE, MISSING_TENANT, WRONG_TYPES, MISSING_FIELD, OVERSIZED)

MAX_RECORD_BYTES = 128 * 1024  # one raw vendor record; the largest real ones are a few KiB


class Ignored(Exception):
    """A valid record that is not about a person's behaviour (e.g. a stream-started audit record)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Rejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Outcome:
    kind: Literal["normalized", "ignored", "rejected"]
    source: str
    event_json: str | None = None  # the validated normalized event, serialized once (batching reuses it)
    uid: str | None = None
    time: int | None = None
    reason: str | None = None
    detail: str | None = None
    raw: str | None = None  # the raw record, kept for rejected ones so the DLQ loses nothing

    @property
    def event(self) -> dict[str, Any] | None:
        return json.loads(self.event_json) if self.event_json is not None else None

    def summary(self) -> dict[str, Any]:
        """What the CLI prints for this outcome."""
        if self.kind == "normalized":
            return self.event or {}
        out: dict[str, Any] = {"outcome": self.kind, "source": self.source, "reason": self.reason}
        if self.detail:
            out["detail"] = self.detail
        return out
