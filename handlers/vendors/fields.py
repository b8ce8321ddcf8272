"""Reading vendor fields: access that rejects with a precise reason, the placeholders vendors use
for "no value", times in the formats vendors really send, hashes, lists, and dropping empty groups."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from handlers.outcomes import Rejected, RejectReason

EARLIEST_MS = 315_532_800_000  # 1980-01-01
LATEST_MS = 4_102_444_800_000  # 2100-01-01
_EMAIL = re.compile(r"^[^@\s\\]+@[^@\s\\]+\.[^@\s\\]+$")


def get(record: Any, path: str, default: Any = None) -> Any:
    """record["a"]["b"] for "a.b", or default when any step is missing or null."""
    if "." not in path:  # the common case, kept cheap: this runs for every field of every record
        value = record.get(path) if isinstance(record, dict) else None
        return default if value is None else value
    value = record
    for key in path.split("."):
        if not isinstance(value, dict):
            return default
        value = value.get(key)
        if value is None:
            return default
    return value


def require(record: Any, path: str) -> Any:
    value = get(record, path)
    if value is None or value == "":
        raise Rejected(RejectReason.MISSING_FIELD, f"required field '{path}' is missing")
    return value


_BLANK = frozenset(("", "None", "NA", "N/A", "-", "null"))


def text(record: Any, path: str, *, blank: frozenset[str] | tuple[str, ...] = _BLANK) -> str | None:
    """A string field, with the placeholders vendors use for 'no value' turned into None."""
    if "." in path:
        value = get(record, path)
    elif isinstance(record, dict):  # get(), inlined: this runs for most fields of every record
        value = record.get(path)
    else:
        return None
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, (dict, list)):
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' must be a string, got {type(value).__name__}")
    else:
        value = str(value)
    return None if value in blank else value


def integer(record: Any, path: str) -> int | None:
    value = get(record, path)
    if value is None or value == "" or value == "-":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' must be a number, got {type(value).__name__}")
    try:
        return int(float(value))
    except ValueError:
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' must be a number, got {value!r:.60}") from None


def basename(path: str | None) -> str | None:
    """The file name at the end of a Windows path (FDR image and script paths)."""
    return (path or "").rsplit("\\", 1)[-1] or None


def port(record: Any, path: str) -> int | None:
    value = integer(record, path)
    return value if value is not None and 0 <= value <= 65535 else None


def email(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and _EMAIL.match(stripped := candidate.strip()):
            return stripped.lower()
    return None


def epoch_ms(value: Any, path: str) -> int:
    """Epoch seconds or milliseconds (number or numeric string) -> epoch milliseconds."""
    if isinstance(value, bool) or value is None or value == "":
        raise Rejected(RejectReason.WRONG_TYPES if value is not None else RejectReason.MISSING_FIELD, f"field '{path}' is not a timestamp")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' must be an epoch timestamp, got {value!r:.60}") from None
    if number >= 1e17:  # nanoseconds
        number /= 1e6
    elif number >= 1e14:  # microseconds
        number /= 1e3
    time_ms = int(number) if number >= 1e11 else int(number * 1000)  # milliseconds, else seconds
    return _in_range(time_ms, path)


def _in_range(time_ms: int, path: str) -> int:
    if not EARLIEST_MS <= time_ms <= LATEST_MS:
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' is not a plausible time (1980-2100)")
    return time_ms


_MONTHS = {m: n for n, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_NUMERIC = re.compile(r"\d+(\.\d+)?")
_FRACTION = re.compile(r"(\.\d{6})\d+")
# "Mon Aug 28 08:05:55 2023" (Zscaler NSS, Netskope src_time) and "Mar 01 2021 21:06:06" (CEF rt)
_CTIME = re.compile(r"(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+(\d{4})")
_MONTH_FIRST = re.compile(r"([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})")


def parse_time(value: Any, path: str) -> int:
    """A timestamp in any format the supported vendors use -> epoch milliseconds, UTC.

    Strings without a zone are UTC (every supported feed documents UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch_ms(value, path)
    if not isinstance(value, str) or not value.strip():
        raise Rejected(RejectReason.MISSING_FIELD if not value else RejectReason.WRONG_TYPES, f"field '{path}' is not a timestamp")
    raw = value.strip()
    if raw[0].isalpha():
        # A month's name ("Mon Aug 28 08:05:55 2023", as Zscaler NSS feeds and Netskope's src_time
        # spell it): no ISO 8601 reading takes a time that starts with a letter, and trying first
        # cost three times the reading itself.
        moment = _month_names(raw)
        time_ms = _milliseconds(moment) if moment is not None else None
    elif (time_ms := _plain_iso(raw)) is None:
        if _NUMERIC.fullmatch(raw):
            return epoch_ms(raw, path)
        time_ms = _any_time(raw)
    if time_ms is None:
        raise Rejected(RejectReason.WRONG_TYPES, f"field '{path}' is not a timestamp: {raw!r:.60}")
    return _in_range(time_ms, path)


def _any_time(raw: str) -> int | None:
    """Epoch milliseconds of an ISO 8601 time in any spelling, or of one with a month's name."""
    # Python < 3.11 takes at most 6 fractional digits, Microsoft sends 7.
    iso = _FRACTION.sub(r"\1", raw.replace("Z", "+00:00").replace("/", "-"))
    moment: dt.datetime | None
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        moment = _month_names(raw)
    return _milliseconds(moment) if moment is not None else None


# The ISO 8601 spelling nearly every timestamp has ("2024-03-04T11:17:25.1234567Z"), which
# ``datetime.fromisoformat`` reads as it is (Python >= 3.11: the "Z", and digits beyond the sixth
# dropped): ``_any_time``'s rewriting of the string costs more than reading it. Only this exact
# shape is taken, so both read it alike (tests/test_fields.py compares them).
_PLAIN_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z?")


def _plain_iso(raw: str) -> int | None:
    """Epoch milliseconds of a time of that shape; None for any other string, or an impossible time."""
    if _PLAIN_ISO.fullmatch(raw) is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:  # no such day (February 30th), hour 24: _any_time says so
        return None
    return _milliseconds(moment)


_EPOCH, _MILLISECOND = dt.datetime(1970, 1, 1), dt.timedelta(milliseconds=1)


def _milliseconds(moment: dt.datetime) -> int:
    """Epoch milliseconds; a time without a zone is UTC (counted in whole milliseconds, exactly)."""
    if moment.tzinfo is None:
        return (moment - _EPOCH) // _MILLISECOND
    return int(moment.timestamp() * 1000)


def _month_names(raw: str) -> dt.datetime | None:
    if m := _CTIME.fullmatch(raw):
        month, day, hour, minute, second, year = m.groups()
    elif m := _MONTH_FIRST.fullmatch(raw):
        month, day, year, hour, minute, second = m.groups()
    else:
        return None
    if month not in _MONTHS:
        return None
    try:
        return dt.datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None


_HASH = re.compile(r"[0-9a-fA-F]{32,64}")


def hashes(md5: str | None = None, sha1: str | None = None, sha256: str | None = None) -> list[dict[str, Any]] | None:
    if not (md5 or sha1 or sha256):  # most records carry none
        return None
    out = [
        {"algorithm_id": algorithm, "value": value.lower()}
        for algorithm, value in ((1, md5), (2, sha1), (3, sha256))
        if value and _HASH.fullmatch(value) and value.strip("0")  # (all zeros: a placeholder)
    ]
    return out or None


def split_list(value: Any, sep: str = ",") -> list[str] | None:
    if value is None or value == "":
        return None
    items: dict[str, None] = {}  # a dict's keys: without duplicates, in order
    for part in value if isinstance(value, list) else str(value).split(sep):
        item = str(part).strip()
        if item and item not in ("None", "-", "N/A"):
            items[item] = None
    return list(items) or None


def clean(group: dict[str, Any]) -> dict[str, Any] | None:
    """Drop empty values and objects, so that absent groups do not appear in the event at all."""
    # This runs for every group of every event, so strings (most values) are tested first, by
    # their exact type, and the loop is here rather than one call further down.
    out: dict[str, Any] = {}
    for key, item in group.items():
        if type(item) is str:
            if item:
                out[key] = item
        elif isinstance(item, _CONTAINERS):
            if (item := _clean(item)) is not None:  # a cleaned container is None or not empty
                out[key] = item
        elif item is not None and item != "":
            out[key] = item
    return out or None


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return clean(value)
    if isinstance(value, list):
        items = [_clean(v) if isinstance(v, _CONTAINERS) else v for v in value]
        return [v for v in items if v is not None and v != ""] or None
    return value


_CONTAINERS = (dict, list)


def unquote(value: str | None) -> str | None:
    """Zscaler NSS feeds URL-encode some fields ("Road%20Warrior")."""
    return urllib.parse.unquote(value) if value and "%" in value else value


def each(payload: Any) -> Iterator[Any]:
    """The records of a payload that is one record or a JSON array of them (most vendors' APIs)."""
    yield from payload if isinstance(payload, list) else [payload]
