"""``handlers.events``' own shortcuts against the plain code they replace."""

from __future__ import annotations

import time

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from handlers.events import iso_utc

SEED = 20260317


@seed(SEED)
@settings(max_examples=3000, deadline=None, database=None)
@given(time_ms=st.integers(-(2**40), 2**45) | st.integers(315_532_800_000, 4_102_444_800_000))
def test_iso_utc_is_strftime_of_the_time(time_ms: int):
    assert iso_utc(time_ms) == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ms // 1000)) + f".{time_ms % 1000:03d}Z"
