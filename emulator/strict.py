"""Where moto is kinder than AWS, the embedded AWS is made as strict as AWS, so that a test cannot
pass only because the emulator is lenient.

- SQS ``SendMessageBatch``: AWS refuses a batch whose messages together (bodies and attributes:
  names, types and values) exceed 262,144 bytes (``BatchRequestTooLong``); moto counts bodies only,
  in characters, against 1 MiB.
"""

from __future__ import annotations

from typing import Any

from moto.sqs.exceptions import BatchRequestTooLong
from moto.sqs.models import SQSBackend

SQS_BATCH_BYTES = 262_144


def _attributes_bytes(attributes: dict[str, Any]) -> int:
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("data_type") or value.get("DataType") or "").encode())
        for key in ("string_value", "StringValue", "binary_value", "BinaryValue"):
            if value.get(key) is not None:
                size += len(str(value[key]).encode("utf-8", "surrogatepass"))
    return size


def _sqs_batch_total() -> None:
    original = SQSBackend.send_message_batch

    def send_message_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        total = sum(
            len(str(entry.get("MessageBody", "")).encode("utf-8", "surrogatepass"))
            + _attributes_bytes(entry.get("MessageAttributes") or {})
            for entry in entries.values()
        )
        if total > SQS_BATCH_BYTES:
            raise BatchRequestTooLong(total)
        return original(self, queue_name, entries)

    SQSBackend.send_message_batch = send_message_batch  # type: ignore[method-assign]


def install() -> None:
    _sqs_batch_total()
