"""Every raw record ends in exactly one outcome: normalized, ignored (with a reason) or rejected
(with a reason). Normalizers raise ``Ignored``/``Rejected``; the ingest stage turns whatever
happens into one of the three outcome types."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal


class RejectReason(StrEnum):
    """Why a record is not usable as sent. Every rejected record reaches the dead-letter queue."""

    MALFORMED = "malformed"  # not JSON, not a line format the source uses
    UNKNOWN_SOURCE = "unknown_source"  # no normalizer for the named source, or auto-detection failed
    MISSING_TENANT = "missing_tenant"  # the message envelope names no (valid) tenant
    WRONG_TYPES = "wrong_types"  # a field the normalizer needs has the wrong type or format
    MISSING_FIELD = "missing_field"  # a field the normalizer needs is absent
    OVERSIZED = "oversized"  # the record is larger than coachflow accepts
    UNREGISTERED_PRODUCER = "unregistered_producer"  # the sender may not speak for the tenant the envelope names


class IgnoreReason(StrEnum):
    """Why a valid record gives no event. Ignored records are logged and counted, never evaluated."""

    NOT_BEHAVIOUR = "not_behaviour"  # about systems or services, not a person's behaviour
    UNSUPPORTED_EVENT_TYPE = "unsupported_event_type"  # an event type that carries no coaching signal
    NOT_EVENT = "not_event"  # part of a feed's framing (a W3C directive), not an event
    EMPTY = "empty"  # a page with no records at all ([], an API response with empty arrays)


MAX_RECORD_BYTES = 128 * 1024  # one raw vendor record; the largest real ones are a few KiB


class Ignored(Exception):
    """Raised by a normalizer for a valid record that is not about a person's behaviour."""

    def __init__(self, reason: IgnoreReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Rejected(Exception):
    """Raised by a normalizer (or the ingest stage) for a record that cannot be used as sent."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class NormalizedOutcome:
    kind: ClassVar[Literal["normalized"]] = "normalized"
    source: str
    event_json: str  # the validated normalized event, serialized once (batching reuses it)
    uid: str
    time: int

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.event_json)
        return event

    def summary(self) -> dict[str, Any]:
        """What the CLI prints for this outcome: the event itself."""
        return self.event


@dataclass(frozen=True, slots=True)
class IgnoredOutcome:
    kind: ClassVar[Literal["ignored"]] = "ignored"
    source: str
    reason: IgnoreReason
    detail: str

    def summary(self) -> dict[str, Any]:
        return {"outcome": self.kind, "source": self.source, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class RejectedOutcome:
    kind: ClassVar[Literal["rejected"]] = "rejected"
    source: str
    reason: RejectReason
    detail: str
    raw: str  # the raw record, so the dead-letter queue loses nothing

    def summary(self) -> dict[str, Any]:
        return {"outcome": self.kind, "source": self.source, "reason": self.reason, "detail": self.detail}


Outcome = NormalizedOutcome | IgnoredOutcome | RejectedOutcome
KINDS = ("normalized", "ignored", "rejected")
