"""A fixed interleaving of two evaluations racing on one DynamoDB table, for the race tests of
thresholds (tests/test_rules_state.py) and coaching (tests/test_coaching.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Paused:
    """The table, but each caller's first query that ``reads_window`` picks waits until ``parties``
    callers have made theirs (every evaluation has read before any of them writes its decision),
    and then a caller marked ``second`` waits until the first caller's decision is done: the race
    is the same on every run."""

    def __init__(self, table: Any, parties: int, reads_window: Callable[[dict[str, Any]], bool]) -> None:
        self._table, self._barrier, self._local = table, threading.Barrier(parties, timeout=10), threading.local()
        self._reads_window = reads_window
        self.first_done = threading.Event()

    def query(self, **request: Any) -> Any:
        page = self._table.query(**request)
        if self._reads_window(request) and not getattr(self._local, "paused", False):
            self._local.paused = True
            self._barrier.wait()
            if getattr(self._local, "second", False):
                self.first_done.wait(10)
        return page

    def run(self, decide: Callable[[], Any], second: bool) -> Any:
        self._local.second = second
        try:
            return decide()
        finally:
            if not second:
                self.first_done.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)
