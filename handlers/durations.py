"""Durations as rule and tenant documents write them: a number of seconds or ``30s``, ``15m``,
``2h``, ``7d``; every window (a rule's threshold and suppression, a tenant's escalation ladder and
frequency cap) is at most 30 days."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_WINDOW = 30 * 86400
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if not m:
            raise ValueError("durations are a number of seconds or a string like '30s', '15m', '2h', '7d'")
        return int(m.group(1)) * _UNITS[m.group(2)]
    return value


Duration = Annotated[int, BeforeValidator(_seconds), Field(gt=0, le=MAX_WINDOW)]
