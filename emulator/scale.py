"""Where moto is too slow for a soak, made fast without changing what it answers.

- SQS ``ReceiveMessage`` checked each message it returned against the queue's retention period by
  computing every attribute of the queue, and each ``ApproximateNumberOf*`` attribute walks every
  message, so receiving from a queue of N messages cost O(N) per message returned: a queue
  thousands deep (a soak's backlog) took seconds per receive. The retention period is one field.
- ``GetQueueAttributes`` with named attributes computed all attributes three times per name; it
  computes them once.
- SQS asked for the time through datetime arithmetic twice per message per scan of a queue; it reads
  the clock (the same Unix time, in milliseconds).
- The server's dispatcher, for every request and under a lock all requests share, asked whether the
  request's host names a moto module by listing moto's package directory and testing each of its
  ~175 entries for being a directory: 0.7 ms of CPU of a request's 2-3 ms. The list is made once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import moto.backends
import moto.sqs.models
from moto.core.utils import unix_time
from moto.sqs.models import Message, SQSBackend


def _retention_check_reads_one_field() -> None:
    def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Message) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
        return bool(retention + message.sent_timestamp / 1000 > time.time())  # type: ignore[operator]

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def _queue_attributes_computed_once() -> None:
    original = SQSBackend.get_queue_attributes

    def get_queue_attributes(self: SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        if "All" in attribute_names or not attribute_names:
            return original(self, queue_name, attribute_names)
        everything = original(self, queue_name, ["All"])  # moto's own validation of the names
        unknown = [name for name in attribute_names if name not in everything]
        if unknown:
            return original(self, queue_name, attribute_names)  # moto's error, or its filtering
        return {name: everything[name] for name in attribute_names if everything.get(name) is not None}

    SQSBackend.get_queue_attributes = get_queue_attributes  # type: ignore[method-assign]


def _sqs_reads_the_clock() -> None:
    models: Any = moto.sqs.models  # its clock functions are imported names, replaced where SQS uses them

    def unix_time_millis(when: dt.datetime | None = None) -> float:
        return time.time() * 1000.0 if when is None else unix_time(when) * 1000.0

    def unix_seconds(when: dt.datetime | None = None) -> float:
        return time.time() if when is None else unix_time(when)

    models.unix_time_millis = unix_time_millis
    models.unix_time = unix_seconds


def _moto_modules_listed_once() -> None:
    modules = frozenset(moto.backends.list_of_moto_modules())  # moto's installed packages: fixed while it runs
    moto.backends.list_of_moto_modules = lambda: modules


def install() -> None:
    _moto_modules_listed_once()
    _sqs_reads_the_clock()
    _retention_check_reads_one_field()
    _queue_attributes_computed_once()
