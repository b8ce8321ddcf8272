"""The normalize adapter's own logic that needs no AWS: splitting dead letters into SendMessageBatch
requests that SQS accepts."""

from __future__ import annotations

import pytest

from handlers.normalize import SQS_BATCH_BYTES, SQS_BATCH_ENTRIES, message_bytes, sqs_batches


def _entry(n: int, body_bytes: int, detail: str = "d") -> dict:
    return {"Id": str(n), "MessageBody": "é" * (body_bytes // 2),
            "MessageAttributes": {"rejection_detail": {"DataType": "String", "StringValue": detail}}}  # fmt: skip


def test_message_bytes_counts_bodies_in_utf8_and_every_attribute():
    entry = _entry(0, 10, "détail")
    assert message_bytes(entry) == 10 + len("rejection_detail") + len("String") + len("détail".encode())


@pytest.mark.parametrize("sizes", [[26_000] * 10, [200_000, 70_000, 10], [100] * 25, [262_000], [1] * 10 + [262_000]])
def test_every_batch_is_within_the_limits_and_keeps_order(sizes: list[int]):
    entries = [_entry(n, size, "x" * 300) for n, size in enumerate(sizes)]
    batches = sqs_batches(entries)
    assert [e["Id"] for batch in batches for e in batch] == [e["Id"] for e in entries]  # nothing lost, nothing reordered
    for batch in batches:
        assert 1 <= len(batch) <= SQS_BATCH_ENTRIES
        assert sum(message_bytes(e) for e in batch) <= SQS_BATCH_BYTES or len(batch) == 1
