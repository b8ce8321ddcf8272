"""The shortcuts of ``handlers.vendors.fields`` against the general code they skip: the same answer for
every input the shortcut takes, and no answer (so the general code decides) for any other."""

from __future__ import annotations

import calendar
import datetime

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from handlers.outcomes import Rejected
from handlers.vendors import fields

SEED = 20260317

PLAIN = [
    "2024-03-04T11:17:25Z",
    "2024-03-04T11:17:25.1Z",
    "2024-03-04T11:17:25.12Z",
    "2024-03-04T11:17:25.123Z",
    "2024-03-04T11:17:25.1234Z",
    "2024-03-04T11:17:25.12345Z",
    "2024-03-04T11:17:25.123456Z",
    "2023-09-28T16:15:29.9227997Z",  # Microsoft's seven digits
    "2023-09-28T16:15:29.999999999999Z",
    "2022-11-02T12:00:00.000Z",
    "2024-03-04 11:17:25",
    "2024-02-29T23:59:59.999Z",  # a leap day
    "1970-01-01T00:00:00.001Z",
    "1969-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999999Z",
]
NOT_PLAIN = [
    "2024/03/04 11:17:25",  # PAN-OS: the general path turns the slashes into dashes
    "2023-02-29T00:00:00Z",  # no such day
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-03-04T24:00:00Z",
    "2024-03-04T23:60:00Z",
    "2024-03-04T23:59:60Z",  # a leap second
    "2024-03-04T11:17:25.Z",
    "2024-03-04T11:17:25+02:00",
    "2024-03-04T11:17:25z",
    "2024-03-04t11:17:25Z",
    "2024-03-04T11:17",
    "2024-03-04",
    "20240304T111725Z",
    "٢٠٢٤-03-04T11:17:25Z",  # digits, but not ASCII ones
    "Mon Aug 28 08:05:55 2023",
    "1693209955123",
]


@pytest.mark.parametrize("raw", PLAIN)
def test_plain_iso_times_read_as_the_general_path_reads_them(raw: str):
    assert fields._plain_iso(raw) is not None
    assert fields._plain_iso(raw) == fields._any_time(raw)


@pytest.mark.parametrize("raw", NOT_PLAIN)
def test_other_times_are_left_to_the_general_path(raw: str):
    assert fields._plain_iso(raw) is None


_digits = st.text("0123456789", min_size=1, max_size=2)


@seed(SEED)
@settings(max_examples=3000, deadline=None, database=None)
@given(
    year=st.integers(1, 9999),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
    hour=st.integers(0, 25),
    minute=st.integers(0, 61),
    second=st.integers(0, 61),
    fraction=st.none() | st.text("0123456789", min_size=0, max_size=12),
    separators=st.tuples(st.sampled_from("-/"), st.sampled_from("-/"), st.sampled_from("T ")),
    zulu=st.booleans(),
)
def test_any_plain_iso_time_reads_as_the_general_path_reads_it(
    year: int, month: int, day: int, hour: int, minute: int, second: int, fraction: str | None, separators: tuple[str, str, str], zulu: bool
):
    dash1, dash2, tee = separators
    raw = f"{year:04d}{dash1}{month:02d}{dash2}{day:02d}{tee}{hour:02d}:{minute:02d}:{second:02d}"
    raw += ("" if fraction is None else f".{fraction}") + ("Z" if zulu else "")
    fast = fields._plain_iso(raw)
    if fast is not None:  # the general path may take strings the shortcut leaves to it, never the reverse
        assert fast == fields._any_time(raw)


# Times that start with a letter: parse_time reads them by the month's name only, as the general
# path does once ISO 8601 has failed.
LETTER_FIRST = ["Mon Aug 28 08:05:55 2023", "Tue Jan  7 15:52:08 2025", "Mar 01 2021 21:06:06", "Aug 28 08:05:55 2023",
                "Mon Foo 28 08:05:55 2023", "Mon Feb 30 08:05:55 2023", "T12:00:00", "Z", "Infinity", "Ünknown 1 2 3", "x2024-03-04"]  # fmt: skip


@pytest.mark.parametrize("raw", LETTER_FIRST)
def test_a_time_that_starts_with_a_letter_reads_as_the_general_path_reads_it(raw: str):
    try:
        fast: int | str = fields.parse_time(raw, "t")
    except Rejected as exc:
        fast = exc.detail
    general = fields._any_time(raw)
    assert fast == (general if general is not None else f"field 't' is not a timestamp: {raw!r:.60}")


def test_parse_time_takes_both_paths():
    assert fields.parse_time("2024-03-04T11:17:25.123Z", "t") == 1_709_551_045_123
    assert fields.parse_time(" 2024-03-04T13:17:25.123+02:00 ", "t") == 1_709_551_045_123
    assert fields.parse_time("Mon Mar 04 11:17:25 2024", "t") == 1_709_551_045_000


@seed(SEED)
@settings(max_examples=2000, deadline=None, database=None)
@given(moment=st.datetimes())
def test_a_time_without_a_zone_counts_whole_milliseconds_as_calendar_timegm_does(moment: datetime.datetime):
    assert fields._milliseconds(moment) == calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000
