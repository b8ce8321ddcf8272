"""Step Functions' 262,144-byte limit, with every wrapper a payload passes through (handlers.limits).

These tests compute, in-process, what AWS measures (the embedded AWS enforces it too:
tests/test_emulator_limits.py): a batch
becomes CheckEventsForRuleMatch's task parameters ``{"FunctionName": <arn>, "Payload": <batch>}``;
CheckEventsForRuleMatch's output becomes a task result, TriggerNotifications' task parameters, and,
when TriggerNotifications fails, a state input with the caught error added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from handlers import batching, check_rules, limits

# The longest function ARN a deployment can have: the aws-us-gov partition and a 64-character name.
LONGEST_ARN = "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:" + "f" * 64
CAP = limits.STATE_PAYLOAD_BYTES


def _task_parameters(payload: Any) -> int:
    """The size of a Lambda task's parameters as Step Functions records them (compact JSON)."""
    return len(json.dumps({"FunctionName": LONGEST_ARN, "Payload": payload}, separators=(",", ":"), ensure_ascii=False).encode())


def _item(n: int, size: int) -> batching.Item:
    """An event whose compact JSON is exactly ``size`` bytes."""
    uid = f"{n:032x}"
    head = json.dumps({"uid": uid, "pad": ""}, separators=(",", ":"))
    return batching.Item(uid, n, head[:-2] + "x" * (size - len(head)) + '"}')


def test_a_batch_filled_to_the_byte_still_fits_once_scheduled():
    budget = batching.PAYLOAD_CAP - batching.overhead("acme")
    items = [_item(0, budget // 2), _item(1, budget - budget // 2 - 1)]  # plus one comma: exactly the budget
    (batch,) = batching.plan("acme", items)
    assert batch.size == limits.EXECUTION_INPUT_BYTES
    assert _task_parameters(json.loads(batch.payload)) <= CAP
    one_more = [items[0], _item(1, budget - budget // 2)]
    assert len(batching.plan("acme", one_more)) == 2  # a byte over: two batches


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400)


@given(pads=st.lists(st.tuples(TEXT, st.integers(0, 40)), min_size=50, max_size=400))
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_every_batch_fits_the_limit_once_wrapped_as_task_parameters(pads: list[tuple[str, int]]):
    items = []
    for n, (text, repeat) in enumerate(pads):
        uid = f"{n:032x}"
        items.append(batching.Item(uid, n, json.dumps({"uid": uid, "note": text * repeat}, separators=(",", ":"), ensure_ascii=False)))
    for batch in batching.plan("acme", items, claim_check=lambda uid, body: json.dumps({"claim_check": {"uid": uid}})):
        assert _task_parameters(json.loads(batch.payload)) <= CAP


@pytest.fixture
def claims() -> Iterator[Any]:
    with mock_aws():
        os.environ["CLAIMS_BUCKET"] = "claims"
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="claims")
        check_rules.aws.client.cache_clear()  # the function's cached clients must talk to the mock
        yield s3
        check_rules.aws.client.cache_clear()
        del os.environ["CLAIMS_BUCKET"]


def _output(matches: int, note: str) -> dict[str, Any]:
    match = {"notification_id": "0" * 32, "rule_id": "r", "note": note}
    return {"mode": "events", "tenant_id": "acme", "batch_id": "b", "events": 1, "decisions": {}, "match_count": matches,
            "matches": [match] * matches}  # fmt: skip


@pytest.mark.parametrize("note", ["x" * 1000, "é" * 500])  # non-ASCII: the Lambda runtime escapes it (\\u00e9, 6 bytes)
def test_an_output_is_inline_only_when_it_fits_every_wrapper_after_it(claims: Any, note: str):
    worst_error = {"Error": "AllNotificationsFailedException", "Cause": "c" * 32_768}
    for matches in [10, *range(30, 400, 7)]:
        output = check_rules._fit(_output(matches, note), "acme")
        returned = json.dumps(output)  # as the Python runtime serializes a handler's result
        result = {"ExecutedVersion": "$LATEST", "Payload": output, "SdkHttpMetadata": {"AllHttpHeaders": {"h" * 40: ["v" * 100]} },
                  "SdkResponseMetadata": {"RequestId": "r" * 36}, "StatusCode": 200}  # fmt: skip
        assert len(json.dumps(result).encode()) <= CAP  # the task result
        assert _task_parameters(json.loads(returned)) <= CAP  # TriggerNotifications scheduled with it
        assert len(json.dumps({**output, "error": worst_error}).encode()) <= CAP  # the Catch's state output
        if isinstance(output["matches"], dict):
            pointer = output["matches"]["claim_check"]
            stored = json.loads(claims.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read())
            assert len(stored) == matches and len(returned.encode()) < 1000
        else:
            assert len(returned.encode()) <= limits.TASK_OUTPUT_BYTES
    # both ways were taken
    assert isinstance(check_rules._fit(_output(10, note), "acme")["matches"], list)
    assert isinstance(check_rules._fit(_output(399, note), "acme")["matches"], dict)
