"""Thresholds under concurrency and failure, against moto's DynamoDB in-process (transactions and
conditions are moto's): two evaluations of the same key at once, and a crash mid-decision."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.rules.model import Rule
from handlers.rules.state import RuleState
from tests.interleave import Paused

RULE = Rule.model_validate({"rule_id": "five", "match": {"class_uid": [3002]}, "threshold": {"count": 5, "window": "1h"}})
T0 = 1_790_000_000_000


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        yield boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def _event(n: int) -> dict[str, Any]:
    return {"uid": f"{n:032x}", "time": T0 + n * 1000, "class_uid": 3002, "user": {"email_addr": "amy@example.com"}}


@pytest.mark.parametrize("first", [5, 6])
def test_two_evaluations_of_the_crossing_at_once_fire_once(table: Any, first: int) -> None:
    for n in range(1, 5):
        assert RuleState(table, "acme").decide(RULE, _event(n)) == "below_threshold"
    shared = Paused(table, parties=2, reads_window=lambda request: request.get("Select") == "COUNT")
    decisions: dict[int, str] = {}

    def evaluate(n: int) -> None:
        decisions[n] = shared.run(lambda: RuleState(shared, "acme").decide(RULE, _event(n)), second=n != first)

    threads = [threading.Thread(target=evaluate, args=(n,)) for n in (5, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(decisions.values()) == ["below_threshold", "notify"], decisions
    assert decisions[first] == "notify"  # whichever committed first crossed the threshold
    # and every replay agrees with what was decided
    assert {n: RuleState(table, "acme").decide(RULE, _event(n)) for n in (5, 6)} == decisions


class FailsOnce:
    """The table, but the first write of a decision (the marker, or the transaction carrying it) is
    throttled: the evaluation crashes mid-decision."""

    def __init__(self, table: Any) -> None:
        self._table, self.failed = table, False
        client = table.meta.client

        class Client:
            def transact_write_items(inner, **request: Any) -> Any:
                self._fail()
                return client.transact_write_items(**request)

            def __getattr__(inner, name: str) -> Any:
                return getattr(client, name)

        class Meta:
            def __getattr__(inner, name: str) -> Any:
                return Client() if name == "client" else getattr(table.meta, name)

        self.meta = Meta()

    def _fail(self) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("ProvisionedThroughputExceededException (injected)")

    def put_item(self, **request: Any) -> Any:
        if request.get("Item", {}).get("sk") == "marker":
            self._fail()
        return self._table.put_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def test_a_crash_mid_decision_does_not_lose_the_crossing(table: Any) -> None:
    for n in range(1, 5):
        assert RuleState(table, "acme").decide(RULE, _event(n)) == "below_threshold"
    flaky = FailsOnce(table)
    with pytest.raises(RuntimeError, match="injected"):
        RuleState(flaky, "acme").decide(RULE, _event(5))
    assert flaky.failed
    # the execution is retried (or redriven): the fifth event still crosses the threshold
    assert RuleState(table, "acme").decide(RULE, _event(5)) == "notify"
    assert RuleState(table, "acme").decide(RULE, _event(6)) == "below_threshold"  # counting restarts after it


def test_a_late_event_older_than_the_last_crossing_does_not_fire_again(table: Any) -> None:
    for n in (1, 2, 3, 4):
        RuleState(table, "acme").decide(RULE, _event(10 + n))
    assert RuleState(table, "acme").decide(RULE, _event(15)) == "notify"
    assert RuleState(table, "acme").decide(RULE, _event(3)) == "below_threshold"  # arrives late, before the crossing
