"""Stage 1, pure core: a raw vendor payload -> one outcome per record.

Vendors deliver single events, API responses wrapping arrays of events, newline-delimited feeds
and CSV/W3C lines; this module splits them into records, picks the vendor's normalizer (named, or
detected for ``auto``), validates each normalized event against the schema and turns every failure
into a rejection with a reason. Nothing here talks to AWS.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any, Iterator

import pydantic_core
from pydantic import ValidationError

from handlers import vendors
from handlers.events import event_json
from handlers.outcomes import (
    MAX_RECORD_BYTES,
    Ignored,
    IgnoredOutcome,
    IgnoreReason,
    NormalizedOutcome,
    Outcome,
    Rejected,
    RejectedOutcome,
    RejectReason,
)
from handlers.records import Context, Line, TextVendor, Vendor, event_uid
from handlers.tenancy import TENANT_ID

AUTO = "auto"
# The envelope of a raw payload on the raw-events queue: SQS message attributes, so the body stays
# exactly what the vendor sent.
TENANT_ATTRIBUTE, SOURCE_ATTRIBUTE = "tenant_id", "source"


def envelope(tenant: str | None, source: str | None) -> dict[str, dict[str, str]]:
    """The message attributes that say whose a payload is and which vendor sent it."""
    pairs = ((TENANT_ATTRIBUTE, tenant), (SOURCE_ATTRIBUTE, source))
    return {name: {"DataType": "String", "StringValue": value} for name, value in pairs if value is not None}


def normalize_payload(body: str, source: str | None, tenant: str | None, received_ms: int | None = None) -> list[Outcome]:
    """Every record of one raw payload, each with exactly one outcome.

    ``received_ms`` is when the payload arrived (SQS SentTimestamp); records that carry no time of
    their own are placed there."""
    label = source or AUTO
    received = received_ms if received_ms is not None else int(time.time() * 1000)
    if not tenant or not TENANT_ID.match(tenant):
        detail = "the message names no tenant" if not tenant else f"invalid tenant id {tenant!r:.40}"
        return [RejectedOutcome(label, RejectReason.MISSING_TENANT, detail, body)]
    vendor: Vendor | None = None
    if label != AUTO:
        vendor = vendors.VENDORS.get(label)
        if vendor is None:
            detail = f"unknown source {label!r:.40}; known: {', '.join(vendors.names())}, auto"
            return [RejectedOutcome(label, RejectReason.UNKNOWN_SOURCE, detail, body)]
    outcomes: list[Outcome] = []
    for piece in _split(body, vendor, label):
        if isinstance(piece, tuple):
            record_vendor, record = piece
            outcomes.extend(normalize_record(record, record_vendor, tenant, label, received))
        else:
            outcomes.append(piece)
    return outcomes


def reject_payload(body: str, source: str | None, reason: RejectReason, detail: str) -> list[Outcome]:
    """The one outcome of a payload refused as a whole, before it is split (its envelope is wrong)."""
    return [RejectedOutcome(source or AUTO, reason, detail, body)]


# What splitting a payload gives: a record to normalize, with its vendor (None when no vendor
# recognises it), or the outcome of a part of the payload that is already decided (a part no
# vendor's code could read).
Piece = tuple[Vendor | None, Any] | RejectedOutcome | IgnoredOutcome


def _split(body: str, vendor: Vendor | None, label: str) -> Iterator[Piece]:
    stripped = body.strip().lstrip("\ufeff")
    if not stripped:
        yield RejectedOutcome(label, RejectReason.MALFORMED, "empty payload", body)
        return
    try:
        payload = _from_json(stripped)
    except ValueError as exc:
        # Lines are numbered from the body's first line: blank lines before the first record count.
        skipped = body[: len(body) - len(body.lstrip())].count("\n")
        yield from _split_text(stripped, skipped, vendor, label, body, str(exc))
        return
    yield from _split_json(payload, vendor, label)


def _from_json(text: str) -> Any:
    """The JSON in ``text`` (the Rust parser: twice as fast as json.loads); ValueError if there is none,
    including JSON no string can hold (a lone surrogate escape)."""
    try:
        return pydantic_core.from_json(text)
    except TypeError:  # a lone surrogate in the text itself: invalid UTF-8 bytes, kept by a surrogateescape reader (the CLI)
        raise ValueError("not valid UTF-8 text") from None


def _failed(exc: Exception) -> str:
    """A vendor's code raised on a record of a shape it did not expect: what to tell the operator."""
    return f"{type(exc).__name__}: {exc}"[:300]


def _split_json(payload: Any, vendor: Vendor | None, label: str) -> Iterator[Piece]:
    # Every call into a vendor's code below (detect, records) is guarded: whatever it raises rejects
    # the record (or the payload) it was given, never the message.
    if vendor is None and isinstance(payload, list):
        # auto, an array of events: each one's vendor is detected on its own
        if not payload:
            yield IgnoredOutcome(label, IgnoreReason.EMPTY, _empty_page(payload))
        for record in payload:
            try:
                found = vendors.detect(record)
            except Exception as exc:
                yield _rejected(label, record, RejectReason.WRONG_TYPES, f"could not detect its vendor: {_failed(exc)}")
                continue
            yield found, record
        return
    try:
        found, records = (vendor, list(vendor.records(payload))) if vendor is not None else _unwrap(payload)
    except Exception as exc:
        source, failed = (vendor.SOURCE, "split it into records") if vendor is not None else (label, "detect its vendor")
        yield _rejected(source, payload, RejectReason.WRONG_TYPES, f"could not {failed}: {_failed(exc)}")
        return
    if not records:  # an empty page: it is counted, so a poll that found nothing is told from one that was lost
        yield IgnoredOutcome(found.SOURCE if found is not None else label, IgnoreReason.EMPTY, _empty_page(payload))
    for record in records:
        yield found, record


def _unwrap(payload: Any) -> tuple[Vendor | None, list[Any]]:
    """auto, a JSON value that is not an array: one event, or an API response wrapping them."""
    found = vendors.detect(payload)
    if found is not None:
        return found, list(found.records(payload))
    empty = False
    for candidate in vendors.VENDORS.values():
        inner = list(candidate.records(payload))
        if inner and inner != [payload] and all(candidate.detect(r) for r in inner):
            return candidate, inner
        empty = empty or not inner
    # A response some vendor unwraps to nothing is an empty page ({"data": []} could be several vendors').
    return None, [] if empty else [payload]


def _empty_page(payload: Any) -> str:
    """Names the shape of a page that holds no records."""
    if isinstance(payload, dict):
        arrays = ", ".join(f"{json.dumps(key)}: []" for key, value in payload.items() if value == [])
        return f"an API response with no records ({arrays})"[:300] if arrays else "an API response with no records"
    return "an empty JSON array"


def _split_text(text: str, skipped: int, vendor: Vendor | None, label: str, body: str, error: str) -> Iterator[Piece]:
    """A payload that is not one JSON document: a vendor's line format, or newline-delimited JSON."""
    text_vendor = vendors.detect_text(text) if vendor is None else vendors.TEXT_VENDORS.get(vendor.SOURCE)
    if text_vendor is not None and (vendor is None or text_vendor.detect_text(text)):
        yield from _text_lines(text_vendor, text, skipped, body)
    elif (lines := _json_lines(text, skipped)) is not None:
        for number, line, value in lines:
            if isinstance(value, ValueError):  # a broken line is rejected on its own; its neighbours go on
                yield vendor, Line(line, None, number, f"not JSON ({value})")
            else:
                yield from _split_json(value, vendor, label)
    elif text_vendor is not None:  # the named vendor's line format, though it did not recognise the text
        yield from _text_lines(text_vendor, text, skipped, body)
    else:
        yield RejectedOutcome(label, RejectReason.MALFORMED, f"not JSON ({error}) and not a text format this source sends", body)


def _json_lines(text: str, skipped: int) -> list[tuple[int, str, Any]] | None:
    """(line number, line, its JSON or the ValueError saying why it is not JSON) for every non-blank
    line, if the text is newline-delimited JSON: every line JSON, or at least half of them JSON
    objects or arrays (so a few broken lines do not hide it, and broken pretty-printed JSON, whose
    lines are fragments, is not taken for it)."""
    lines: list[tuple[int, str, Any]] = []
    # Lines end at "\n" only: str.splitlines() would also cut a JSON string at a raw U+2028.
    for number, line in enumerate(text.split("\n"), skipped + 1):
        line = line.removesuffix("\r")
        if line.strip():
            try:
                lines.append((number, line, _from_json(line)))
            except ValueError as exc:
                lines.append((number, line, exc))
    broken = sum(isinstance(value, ValueError) for _, _, value in lines)
    containers = sum(isinstance(value, (dict, list)) for _, _, value in lines)
    return lines if not broken or 2 * containers >= len(lines) else None


def _text_lines(text_vendor: TextVendor, text: str, skipped: int, body: str) -> Iterator[Piece]:
    try:  # a vendor's parser failing rejects the payload it was reading, never the message
        records = list(text_vendor.parse_text(text))
    except Rejected as exc:
        yield RejectedOutcome(text_vendor.SOURCE, exc.reason, exc.detail, body)
        return
    except Exception as exc:
        yield RejectedOutcome(text_vendor.SOURCE, RejectReason.MALFORMED, f"could not read its lines: {_failed(exc)}", body)
        return
    for record in records:  # numbered from the first line of the body, not of the stripped text
        yield text_vendor, replace(record, number=record.number + skipped) if skipped and record.number else record


def canonical(record: Any) -> bytes:
    """The record as compact UTF-8 JSON (keys in the order received), or a text record's line: its
    uid is a hash of this, so the same raw record always gets the same uid, however it was spaced."""
    if isinstance(record, Line):
        return record.text.encode("utf-8", "surrogatepass")
    return pydantic_core.to_json(record)


def _rejected(source: str, record: Any, reason: RejectReason, detail: str) -> RejectedOutcome:
    """A rejected record, with its raw form for the dead-letter queue."""
    return RejectedOutcome(source, reason, detail, canonical(record).decode("utf-8", "surrogatepass"))


def _unreadable(line: Line) -> str | None:
    """Why a text record cannot be read, if it cannot: what its vendor's reader said, or that it
    holds invalid UTF-8 bytes (kept as lone surrogates by a surrogateescape reader, the CLI), which
    no event can carry."""
    if line.problem is not None:
        return line.problem
    try:
        line.text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 text"
    return None


def normalize_record(record: Any, vendor: Vendor | None, tenant: str, label: str, received_ms: int) -> list[Outcome]:
    raw = canonical(record)
    source = vendor.SOURCE if vendor is not None else label
    where = f"line {record.number}: " if isinstance(record, Line) and record.number else ""  # which line of the payload

    def rejected(reason: RejectReason, detail: str) -> RejectedOutcome:
        return RejectedOutcome(source, reason, where + detail, raw.decode("utf-8", "surrogatepass"))

    if len(raw) > MAX_RECORD_BYTES:
        return [rejected(RejectReason.OVERSIZED, f"record exceeds {MAX_RECORD_BYTES} bytes")]
    if isinstance(record, Line) and (problem := _unreadable(record)):
        return [rejected(RejectReason.MALFORMED, problem)]
    if vendor is None:
        return [rejected(RejectReason.UNKNOWN_SOURCE, "no vendor recognises this record")]
    if not isinstance(record, (dict, Line)):
        return [rejected(RejectReason.WRONG_TYPES, f"a {vendor.SOURCE} record must be a JSON object, got {type(record).__name__}")]
    try:
        events = vendor.normalize(record, Context(tenant, event_uid(tenant, source, raw), received_ms))
    except Ignored as exc:
        return [IgnoredOutcome(source, exc.reason, exc.detail)]
    except Rejected as exc:
        return [rejected(exc.reason, exc.detail)]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
        # A field had a shape the normalizer did not expect (a list for a string, "inf" for a
        # number): the record is wrong, not the code path.
        return [rejected(RejectReason.WRONG_TYPES, f"{type(exc).__name__}: {exc}"[:300])]
    outcomes: list[Outcome] = []
    for event in events:
        try:
            text, uid, time_ms = event_json(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            outcomes.append(rejected(RejectReason.WRONG_TYPES, f"{field}: {first['msg']}"[:300]))
            continue
        outcomes.append(NormalizedOutcome(source, text, uid, time_ms))
    return outcomes
