"""Re-evaluation's pure parts (buffer keys, which batches a run takes, which rules it re-runs) and its
bookkeeping (the per-tenant marker: one run at a time, progress, due work for the sweep), against
moto's DynamoDB and S3 in-process; and the closing of threshold windows. The whole path through
real executions is in test_reevaluation_e2e.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers import aws, recent_events
from handlers.ledger import due_tenants
from handlers.reevaluation import Reevaluation, buffer
from handlers.rules.evaluate import Evaluation, evaluate
from handlers.rules.model import Rule
from handlers.rules.ruleset import build, changed_rules, fingerprints, ruleset_version
from handlers.rules.state import KEEP_SECONDS, RuleState

T0 = 1_790_000_000_000
DAY = 86400


class Clock:
    """Now, moved by hand (S3 stamps objects with the real time: a clock far from it expires them)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def _rule(rule_id: str, **extra: Any) -> Rule:
    return Rule.model_validate({"rule_id": rule_id, "match": {"class_uid": [3002]}, **extra})


def _event(n: int, tenant: str = "acme", at: int | None = None, class_uid: int = 3002) -> dict[str, Any]:
    return {"uid": f"{n:032x}", "time": T0 + n * 1000 if at is None else at, "class_uid": class_uid,
            "metadata": {"tenant_uid": tenant}, "user": {"email_addr": "amy@example.com"}}  # fmt: skip


# -- keys --------------------------------------------------------------------------------------------


def test_a_batch_key_sorts_by_its_oldest_event_and_says_its_version_and_size() -> None:
    events = [_event(5), _event(2), _event(9)]
    key = recent_events.key("acme", "b1", "0123456789abcdef", events)
    assert key == f"recent/acme/{T0 + 2000:013d}-b1.0123456789abcdef.3.json"
    assert recent_events.key("acme", "b1", "0123456789abcdef", list(reversed(events))) == key  # a retry overwrites
    assert recent_events.entry("acme", key) == recent_events.Entry(key, "0123456789abcdef", 3)
    older = recent_events.key("acme", "b2", "0123456789abcdef", [_event(1)])
    assert older < key  # listing order: oldest events first


def test_keys_stay_in_the_tenants_prefix_whatever_the_input() -> None:
    key = recent_events.key("acme", "../../globex/x", "v/../..", [_event(1)])
    assert key.startswith("recent/acme/") and ".." not in key and key.count("/") == 2
    assert recent_events.entry("acme", key) is not None
    assert recent_events.key("Not A Tenant", "b", "v", [_event(1)]).startswith("recent/unknown/")
    # another tenant's key, or anything that is not a buffered batch, is no entry of this tenant
    assert recent_events.entry("acme", recent_events.key("globex", "b", "v", [_event(1)])) is None
    assert recent_events.entry("acme", "recent/acme/../globex/0000000000001-b.v.1.json") is None
    assert recent_events.entry("acme", "recent/acme/notes.txt") is None
    # a weird event time sorts first or last, never breaks the key
    assert recent_events.entry("acme", recent_events.key("acme", "b", "v", [_event(1, at=-5)])) is not None
    assert recent_events.key("acme", "b", "v", [_event(1, at=10**15)]).startswith("recent/acme/9999999999999-")


def test_a_body_round_trips() -> None:
    rules, events = recent_events.decode(recent_events.encode("v1", {"r": "f"}, [_event(1)]))
    assert rules == {"r": "f"} and events == [_event(1)]
    with pytest.raises(ValueError):
        recent_events.decode(b'{"events": []}')


# -- which batches a run takes -----------------------------------------------------------------------


def _listing(*specs: tuple[int, str, int, float]) -> list[tuple[str, float]]:
    """(oldest event n, version, events, written at) -> a listing in key order."""
    return sorted((f"recent/acme/{T0 + n:013d}-b{n}.{v}.{count}.json", at) for n, v, count, at in specs)


def test_a_plan_skips_the_current_version_and_expired_objects_and_is_bounded_oldest_first() -> None:
    listing = _listing((1, "old", 100, 50.0), (2, "new", 100, 50.0), (3, "old", 100, 5.0), (4, "old", 300, 50.0), (5, "older", 200, 50.0))
    plan = recent_events.plan("acme", listing, "new", "", not_before=10.0, max_events=450)
    assert [recent_events.entry("acme", e.key).events for e in plan.batches] == [100, 300]  # type: ignore[union-attr]
    assert [b.key for b in plan.batches] == [listing[0][0], listing[3][0]]
    assert (plan.events, plan.more, plan.skipped_current, plan.skipped_expired) == (400, True, 1, 1)
    assert plan.cursor == listing[3][0]  # the next run starts after the last batch taken
    rest = recent_events.plan("acme", [item for item in listing if item[0] > plan.cursor], "new", plan.cursor, 10.0, 450)
    assert [b.key for b in rest.batches] == [listing[4][0]] and not rest.more and rest.cursor == listing[4][0]


def test_a_plan_always_takes_one_batch_even_above_the_bound() -> None:
    plan = recent_events.plan("acme", _listing((1, "old", 500, 50.0), (2, "old", 1, 50.0)), "new", "", 0.0, max_events=10)
    assert len(plan.batches) == 1 and plan.events == 500 and plan.more


def test_only_new_re_enabled_or_changed_rules_are_re_run() -> None:
    same, changed, new = _rule("same"), _rule("changed", title="v1"), _rule("new")
    off = _rule("off", enabled=False)
    before = build("acme", "v1", [same, changed, off])
    after = build("acme", "v2", [same, _rule("changed", title="v2"), new, _rule("off")])
    assert [r.rule_id for r in changed_rules(after, fingerprints(before))] == ["changed", "new", "off"]
    assert changed_rules(before, fingerprints(before)) == []
    # tests do not change what a rule does
    tested = _rule("same", tests=[{"name": "t", "event": {"class_uid": 3002}, "expect": "match"}])
    assert changed_rules(build("acme", "v3", [tested]), fingerprints(before)) == []


# -- the marker and the run, on moto ------------------------------------------------------------------


@pytest.fixture
def aws_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, aws.Bucket]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "due_shard", "AttributeType": "S"},
                {"AttributeName": "due_at", "AttributeType": "N"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "due",
                    "KeySchema": [{"AttributeName": "due_shard", "KeyType": "HASH"}, {"AttributeName": "due_at", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="claims")
        yield table, aws.Bucket("claims")
    aws.client.cache_clear()


def _plain(table: Any, tenant: str = "acme") -> Any:
    """Evaluation as CheckEventsForRuleMatch does it, without coaching settings."""

    def run(rules: list[Rule], events: list[dict[str, Any]]) -> Evaluation:
        return evaluate(tenant, events, build(tenant, "x", rules), RuleState(table, tenant).decide)

    return run


def _forever() -> int:
    return 900_000


def test_a_new_rule_set_re_runs_its_new_rules_once_over_older_batches(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    clock = Clock()
    old_rule, new_rule = _rule("logins"), _rule("proxy", match={"class_uid": [4002]})
    v1 = build("acme", ruleset_version([old_rule]), [old_rule])
    v2 = build("acme", ruleset_version([old_rule, new_rule]), [old_rule, new_rule])
    buffer(bucket, "acme", "b1", v1, [_event(1), _event(2, class_uid=4002), _event(3, tenant="globex", class_uid=4002)])
    buffer(bucket, "acme", "b2", v2, [_event(4, class_uid=4002)])  # evaluated under v2 already
    seen: list[tuple[list[str], list[str]]] = []

    def recording(rules: list[Rule], events: list[dict[str, Any]]) -> Evaluation:
        seen.append(([r.rule_id for r in rules], [e["uid"] for e in events]))
        return _plain(table)(rules, events)

    reevaluation = Reevaluation(table, bucket, "acme", clock)
    rerun = reevaluation.run(v2, recording, _forever, max_events=1000, retention_seconds=DAY)
    assert rerun.status == "ran" and not rerun.more
    # only the new rule, only over the batch evaluated under v1, only the tenant's own events were kept
    assert seen == [(["proxy"], [_event(1)["uid"], _event(2)["uid"]])]
    assert [m["rule_id"] for m in rerun.matches] == ["proxy"] and rerun.matches[0]["event"]["uid"] == _event(2)["uid"]
    assert due_tenants(table, int(clock.now)) == set()
    # the same version again (a schedule fired twice, the sweep): nothing is re-run
    assert reevaluation.run(v2, recording, _forever, 1000, DAY).status == "up_to_date" and len(seen) == 1
    # a rollback to v1 is a new version: the batch evaluated under v2 is re-run with v1's changes (none)
    assert reevaluation.run(v1, recording, _forever, 1000, DAY).status == "ran"
    assert seen[1:] == []


def test_one_run_at_a_time_and_a_dead_run_is_continued_after_its_lease(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    clock = Clock()
    v1, v2 = build("acme", "v1", []), build("acme", "v2", [_rule("r")])
    buffer(bucket, "acme", "b1", v1, [_event(1)])
    first = Reevaluation(table, bucket, "acme", clock, lease_seconds=100)
    assert first._claim(first.marker(), "v2") is not None  # then its function dies
    assert due_tenants(table, int(clock.now)) == set()  # not before the lease ends...
    assert Reevaluation(table, bucket, "acme", clock).run(v2, _plain(table), _forever, 1000, DAY).status == "busy"
    clock.now += 101
    assert due_tenants(table, int(clock.now)) == {"acme"}  # ...then the sweep finds it
    again = Reevaluation(table, bucket, "acme", clock).run(v2, _plain(table), _forever, 1000, DAY)
    assert again.status == "ran" and again.events == 1 and len(again.matches) == 1


def test_a_bounded_run_leaves_the_tenant_due_and_the_next_one_continues(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    clock = Clock()
    v1, v2 = build("acme", "v1", []), build("acme", "v2", [_rule("r")])
    for n in range(1, 6):
        buffer(bucket, "acme", f"b{n}", v1, [_event(n)])
    reevaluation = Reevaluation(table, bucket, "acme", clock)
    runs = []
    while not runs or runs[-1].more:
        runs.append(reevaluation.run(v2, _plain(table), _forever, max_events=2, retention_seconds=DAY))
        assert due_tenants(table, int(clock.now)) == ({"acme"} if runs[-1].more else set())
        assert len(runs) < 5
    assert [r.events for r in runs] == [2, 2, 1] and runs[0].stopped_by == "max_events"
    assert [m["event"]["uid"] for r in runs for m in r.matches] == [_event(n)["uid"] for n in range(1, 6)]  # oldest first, each once


def test_a_run_stops_before_the_deadline_and_resumes_after_the_last_batch_done(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    v1, v2 = build("acme", "v1", []), build("acme", "v2", [_rule("r")])
    for n in range(1, 4):
        buffer(bucket, "acme", f"b{n}", v1, [_event(n)])
    left = iter([900_000, 1_000])  # asked before the second batch (the first always runs) and the third
    reevaluation = Reevaluation(table, bucket, "acme", Clock())
    first = reevaluation.run(v2, _plain(table), lambda: next(left, 1_000), 1000, DAY)
    assert (first.events, first.more, first.stopped_by) == (2, True, "deadline")
    rest = reevaluation.run(v2, _plain(table), _forever, 1000, DAY)
    assert rest.events == 1 and not rest.more
    assert [m["event"]["uid"] for m in first.matches + rest.matches] == [_event(n)["uid"] for n in (1, 2, 3)]


def test_expired_buffer_objects_are_not_re_run_even_if_the_lifecycle_lags(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    buffer(bucket, "acme", "b1", build("acme", "v1", []), [_event(1)])
    later = Clock(1e10)  # long after the object was written
    rerun = Reevaluation(table, bucket, "acme", later).run(build("acme", "v2", [_rule("r")]), _plain(table), _forever, 1000, DAY)
    assert rerun.status == "ran" and rerun.events == 0


def test_a_new_rule_set_marks_the_tenant_due_once(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    clock = Clock()
    reevaluation = Reevaluation(table, bucket, "acme", clock)
    assert reevaluation.notice("v2") and due_tenants(table, int(clock.now)) == {"acme"}
    reevaluation.run(build("acme", "v2", [_rule("r")]), _plain(table), _forever, 1000, DAY)
    assert due_tenants(table, int(clock.now)) == set()
    assert not reevaluation.notice("v2")  # re-run already
    assert reevaluation.notice("v3") and due_tenants(table, int(clock.now)) == {"acme"}


# -- threshold windows close -------------------------------------------------------------------------


THREE = Rule.model_validate({"rule_id": "three", "match": {"class_uid": [3002]}, "threshold": {"count": 3, "window": "1h"}})


def test_a_late_event_cannot_revive_a_closed_window_even_before_ttl_deletes_it(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, _ = aws_mock
    clock = Clock()
    for n in (1, 2):
        assert RuleState(table, "acme", clock).decide(THREE, _event(n)) == "below_threshold"
    # a day and a bit later (TTL has not deleted anything: moto never does, AWS may lag days)...
    clock.now += KEEP_SECONDS + 1
    # ...the third event of that window arrives: the window closed, it counts alone
    assert RuleState(table, "acme", clock).decide(THREE, _event(3)) == "below_threshold"
    # while the same late arrival within the window's life crosses it
    clock.now -= KEEP_SECONDS + 1
    other = {**_event(4), "user": {"email_addr": "bob@example.com"}}
    for n in (5, 6):
        RuleState(table, "acme", clock).decide(THREE, {**_event(n), "user": other["user"]})
    assert RuleState(table, "acme", clock).decide(THREE, {**_event(7), "user": other["user"]}) == "notify"


def test_counted_events_outlive_the_buffer_so_a_re_run_replays_them(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, _ = aws_mock
    clock = Clock()
    state = RuleState(table, "acme", clock, keep_seconds=3 * DAY)
    counted_at = int(clock.now)
    for n in (1, 2):
        state.decide(THREE, _event(n))
    assert state.decide(THREE, _event(3)) == "notify"
    clock.now += 2 * DAY  # a re-run of a 3-day buffer: the counts are alive, each decision is replayed
    assert [state.decide(THREE, _event(n)) for n in (1, 2, 3)] == ["below_threshold", "below_threshold", "notify"]
    items = table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"thr#acme#three#{_hash()}"})["Items"]
    marker = next(i for i in items if i["sk"] == "marker")
    assert len(items) == 4 and all(marker["expires_at"] >= i["expires_at"] >= counted_at + 3 * DAY for i in items)


def _hash() -> str:
    from handlers.rules.state import key_hash

    return key_hash("amy@example.com")


# -- CheckEventsForRuleMatch: the buffer written before evaluation, the version read again ------------


@pytest.fixture
def check_rules_env(aws_mock: tuple[Any, aws.Bucket], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    from handlers import check_rules

    for name, value in {"RULES_TABLE": "rules", "STATE_TABLE": "state", "CLAIMS_BUCKET": "claims",
                        "POWERTOOLS_SERVICE_NAME": "coachflow", "POWERTOOLS_METRICS_NAMESPACE": "Coachflow"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(check_rules.metrics, "namespace", "Coachflow")
    for cached in (aws.client, aws.resource, check_rules._rules):
        cached.cache_clear()
    rules = boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName="rules",
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield check_rules, rules
    for cached in (aws.client, aws.resource, check_rules._rules):
        cached.cache_clear()


def _context() -> Any:
    from emulator.lambda_worker import LambdaContext

    return LambdaContext({"function_name": "check", "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:check",
                          "aws_request_id": "r", "deadline": time.time() + 60})  # fmt: skip


def test_a_push_between_buffering_and_evaluating_is_followed(check_rules_env: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers.rules.store import RuleStore

    check_rules, rules = check_rules_env
    old, new = _rule("logins"), _rule("proxy", match={"class_uid": [4002]})
    RuleStore(rules).push("acme", [old])
    real = check_rules.buffer
    pushes = iter([lambda: RuleStore(rules).push("acme", [old, new])])

    def buffer_then_push(*args: Any) -> Any:
        key = real(*args)
        next(pushes, lambda: None)()  # the push lands right after the first buffer write
        return key

    monkeypatch.setattr(check_rules, "buffer", buffer_then_push)
    batch = {"mode": "events", "tenant_id": "acme", "batch_id": "b1", "events": [_event(1), _event(2, class_uid=4002)]}
    output = check_rules.handler(batch, _context())
    # evaluated under the new version: the new rule's match is there
    assert sorted(m["rule_id"] for m in output["matches"]) == ["logins", "proxy"]
    keys = [k for k, _ in aws.Bucket("claims").keys("recent/acme/")]
    versions = sorted(recent_events.entry("acme", k).version for k in keys)  # type: ignore[union-attr]
    assert versions == sorted([ruleset_version([old]), ruleset_version([old, new])])


def test_a_batch_whose_buffer_write_fails_is_still_evaluated(check_rules_env: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    from handlers.rules.store import RuleStore

    check_rules, rules = check_rules_env
    RuleStore(rules).push("acme", [_rule("logins")])

    def refuse(*args: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject")

    monkeypatch.setattr(aws.Bucket, "put", refuse)
    output = check_rules.handler({"mode": "events", "tenant_id": "acme", "batch_id": "b1", "events": [_event(1)]}, _context())
    assert output["decisions"] == {"notify": 1} and list(aws.Bucket("claims").keys("recent/")) == []


def test_a_batch_gone_or_unreadable_is_skipped_not_retried_forever(aws_mock: tuple[Any, aws.Bucket]) -> None:
    table, bucket = aws_mock
    v1, v2 = build("acme", "v1", []), build("acme", "v2", [_rule("r")])
    buffer(bucket, "acme", "b1", v1, [_event(1)])
    broken = buffer(bucket, "acme", "b2", v1, [_event(2)])
    assert broken is not None
    bucket.put(broken, b"not json", "application/json")
    rerun = Reevaluation(table, bucket, "acme", Clock()).run(v2, _plain(table), _forever, 1000, DAY)
    assert (rerun.status, rerun.more, rerun.unreadable, rerun.events, len(rerun.matches)) == ("ran", False, 1, 1, 1)
