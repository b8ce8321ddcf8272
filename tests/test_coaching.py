"""The escalation ladder and the frequency cap (``handlers.coaching``, ``handlers.coaching_state``),
against moto's DynamoDB in-process: the ladder and the cap over a sequence of one person's events,
replays, two evaluations racing for the last slot, rules, people and tenants apart, and the whole
CheckEventsForRuleMatch function."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.lambda_worker import LambdaContext
from handlers import aws, notify, tenant_settings
from handlers.coaching import Coaching, CoachingError, FrequencyCap, Verdict, ladder_actions, over_cap, parse
from handlers.coaching_state import REPLAY_SECONDS, CoachingState
from handlers.notify import notification_id
from handlers.rules.evaluate import evaluate
from handlers.rules.model import Rule
from handlers.rules.ruleset import build
from handlers.rules.state import RuleState
from handlers.rules.store import RuleStore
from tests.interleave import Paused

T0 = 1_790_000_000_000
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
PHISH = Rule.model_validate({"rule_id": "phish", "match": {"class_uid": [4002]},
                             "actions": [{"template": "Hi {user}"}, {"type": "assign_training", "training_id": "phishing-101"}]})  # fmt: skip
MALWARE = Rule.model_validate({"rule_id": "malware", "match": {"class_uid": [2004]}})
LADDER = {"window": "30d", "steps": [{"at": 1, "level": "tip"}, {"at": 3, "level": "training"}, {"at": 5, "level": "manager"}]}
CAP = {"max": 2, "window": "1h"}


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        yield boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def _event(n: int, at: int, who: str = "amy@example.com", tenant: str = "acme", class_uid: int = 4002) -> dict[str, Any]:
    return {"uid": f"{n:032x}", "time": at, "class_uid": class_uid, "user": {"email_addr": who}, "metadata": {"tenant_uid": tenant}}


class Clock:
    def __init__(self, at_ms: int) -> None:
        self.now = at_ms / 1000

    def __call__(self) -> float:
        return self.now


def _notification(n: int) -> str:
    return notification_id("acme", PHISH.rule_id, f"{n:032x}")


def _state(table: Any, coaching: dict[str, Any], tenant: str = "acme", clock: Clock | None = None) -> CoachingState:
    return CoachingState(table, tenant, parse(coaching), clock or Clock(T0))


def _seen(verdict: Verdict) -> tuple[str, str | None, int]:
    return verdict.decision, verdict.level, verdict.count


# -- settings ----------------------------------------------------------------------------------------


def test_settings_parse_durations_and_refuse_what_is_not_a_ladder() -> None:
    coaching = parse({"escalation": {**LADDER, "escalate_to": "manager"}, "frequency_cap": CAP})
    assert coaching.escalation is not None and coaching.escalation.window == 30 * 86400
    assert coaching.frequency_cap == FrequencyCap(max=2, window=3600)
    assert [coaching.escalation.level(n) for n in range(1, 8)] == ["tip", "tip", "training", "training", "manager", "manager", "manager"]
    assert not parse(None).enabled and not parse({}).enabled
    refused = {
        "escalation.steps: the first step must be at 1": {"escalation": {"window": "7d", "steps": [{"at": 2, "level": "tip"}]}},
        "escalation.steps: steps must be in increasing 'at' order: 3 follows 3": {
            "escalation": {
                "window": "7d",
                "steps": [{"at": 1, "level": "tip"}, {"at": 3, "level": "training"}, {"at": 3, "level": "manager"}],
            }
        },
        "a ladder never steps down: 'tip' at 2 follows 'training' at 1": {
            "escalation": {"window": "7d", "steps": [{"at": 1, "level": "training"}, {"at": 2, "level": "tip"}]}
        },
        "escalation.steps[0].level: Input should be 'tip', 'training' or 'manager'": {
            "escalation": {"window": "7d", "steps": [{"at": 1, "level": "email"}]}
        },
        "escalation.steps: List should have at least 1 item": {"escalation": {"window": "7d", "steps": []}},
        "escalation.window: durations are a number of seconds": {"escalation": {"window": "a month", "steps": [{"at": 1, "level": "tip"}]}},
        "frequency_cap.max: Input should be greater than or equal to 1": {"frequency_cap": {"max": 0, "window": "1d"}},
        "frequency_cap.window: Input should be less than or equal to 2592000": {"frequency_cap": {"max": 3, "window": "31d"}},
        "frequency_cap.per: Extra inputs are not permitted": {"frequency_cap": {"max": 3, "window": "1d", "per": "user"}},
        "frequency_cap.window: Field required": {"frequency_cap": {"max": 3}},
        "cap: Extra inputs are not permitted": {"cap": {"max": 3, "window": "1d"}},
    }
    for message, document in refused.items():
        with pytest.raises(CoachingError) as caught:
            parse(document)
        assert message in str(caught.value), (message, str(caught.value))


def test_settings_are_stored_on_the_tenant_item_and_read_back(table: Any) -> None:
    rules = boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName="rules",
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    tenant_settings.update(rules, "acme", webhook_url="https://hooks.example/acme", producers=["AIDA1"])
    assert not tenant_settings.read(rules, "acme").coaching().enabled
    coaching = parse({"escalation": LADDER, "frequency_cap": CAP})
    tenant_settings.update(rules, "acme", coaching=coaching)
    settings = tenant_settings.read(rules, "acme")
    assert settings.coaching() == coaching  # numbers come back as Decimals: validated into ints again
    assert (settings.webhook_url, settings.producers) == ("https://hooks.example/acme", ("AIDA1",))  # untouched
    tenant_settings.update(rules, "acme", coaching=parse({"frequency_cap": CAP}))  # replaces both
    assert tenant_settings.read(rules, "acme").coaching() == parse({"frequency_cap": CAP})
    tenant_settings.update(rules, "acme", coaching=Coaching())  # empty: removed
    assert "coaching" not in rules.get_item(Key={"tenant_id": "acme", "rule_id": "#tenant"})["Item"]
    # settings edited by hand into invalid ones fail where they are used, naming why, never in normalize
    rules.update_item(Key={"tenant_id": "acme", "rule_id": "#tenant"}, UpdateExpression="SET coaching = :c",
                      ExpressionAttributeValues={":c": {"frequency_cap": {"max": 0, "window": 60}}})  # fmt: skip
    broken = tenant_settings.read(rules, "acme")
    assert broken.allows("AIDA1")
    with pytest.raises(CoachingError, match="frequency_cap.max"):
        broken.coaching()


# -- pure decisions -----------------------------------------------------------------------------------


def test_the_cap_holds_in_every_window_so_a_late_event_cannot_squeeze_in() -> None:
    cap = FrequencyCap(max=2, window=3600)
    assert not over_cap([], T0, cap)
    assert not over_cap([T0], T0 + MINUTE, cap)
    assert over_cap([T0, T0 + MINUTE], T0 + 2 * MINUTE, cap)
    assert not over_cap([T0, T0 + MINUTE], T0 + MINUTE + HOUR, cap)  # T0 left the window
    assert not over_cap([T0, T0 + HOUR], T0 + 30 * MINUTE, cap)  # late, between two an hour apart: each window holds one
    assert over_cap([T0 + 10 * MINUTE, T0 + 20 * MINUTE], T0, cap)  # late: the window from T0 holds both


def test_each_rung_adds_to_the_one_below() -> None:
    actions = [{"type": "notify", "template": "Hi {user}"}, {"type": "assign_training", "training_id": "phishing-101"}]
    assert ladder_actions(actions, "tip", "manager") == actions
    assert ladder_actions(actions, "training", None) == actions  # the rule assigns its course already: not twice
    course = [{"type": "notify", "template": "Hi {user}", "training_id": "phishing-101"}]
    assert ladder_actions(course, "training", None) == [{"type": "assign_training", "template": "Hi {user}", "training_id": "phishing-101"}]
    assert ladder_actions([{"type": "notify"}], "training", None) == [{"type": "notify"}]  # no course: the platform chooses
    assert ladder_actions([{"type": "notify"}], "manager", "ciso@example.com") == [{"type": "notify"},
                                                                                {"type": "escalate", "escalate_to": "ciso@example.com"}]  # fmt: skip
    assert ladder_actions([{"type": "notify"}], "manager", None) == [{"type": "notify"}, {"type": "escalate"}]
    own = [{"type": "notify"}, {"type": "escalate", "escalate_to": "security@example.com"}]
    assert ladder_actions(own, "manager", "ciso@example.com") == own  # the rule's own target wins


# -- state ---------------------------------------------------------------------------------------------


def test_the_ladder_climbs_with_each_notified_match_within_the_window(table: Any) -> None:
    state = _state(table, {"escalation": LADDER})
    seen = [_seen(state.decide(PHISH, _event(n, T0 + n * DAY))) for n in range(1, 7)]
    assert seen == [("notify", "tip", 1), ("notify", "tip", 2), ("notify", "training", 3), ("notify", "training", 4),
                    ("notify", "manager", 5), ("notify", "manager", 6)]  # fmt: skip
    # 30 days after the fifth, only the sixth is in the window: back down the ladder
    assert _seen(state.decide(PHISH, _event(7, T0 + 35 * DAY))) == ("notify", "tip", 2)


def test_the_cap_refuses_over_max_and_allows_again_after_the_window(table: Any) -> None:
    clock = Clock(T0)
    state = _state(table, {"frequency_cap": CAP}, clock=clock)
    decisions = []
    for n, at in enumerate((T0, T0 + 10 * MINUTE, T0 + 20 * MINUTE, T0 + 30 * MINUTE), 1):
        clock.now = at / 1000
        decisions.append(state.decide(PHISH, _event(n, at)).decision)
    assert decisions == ["notify", "notify", "capped", "capped"]
    clock.now = (T0 + 61 * MINUTE) / 1000  # the first left the window; the capped ones never counted
    assert state.decide(PHISH, _event(5, T0 + 61 * MINUTE)).decision == "notify"
    assert state.decide(PHISH, _event(6, T0 + 69 * MINUTE)).decision == "capped"  # 10 and 61 minutes are in its window
    clock.now = (T0 + 71 * MINUTE) / 1000
    assert state.decide(PHISH, _event(7, T0 + 71 * MINUTE)).decision == "notify"  # 61 only
    # kept for a replay at least as long as an execution can be redriven, and by the clock
    items = table.scan()["Items"]
    assert len(items) == 8 and all(int(i["expires_at"]) >= T0 / 1000 + REPLAY_SECONDS for i in items)
    assert int(next(i for i in items if i["sk"].endswith(_notification(7)))["expires_at"]) == (T0 + 71 * MINUTE) // 1000 + REPLAY_SECONDS


def test_capped_matches_do_not_climb_the_ladder(table: Any) -> None:
    state = _state(table, {"escalation": LADDER, "frequency_cap": CAP})
    seen = [_seen(state.decide(PHISH, _event(n, at))) for n, at in enumerate((T0, T0 + MINUTE, T0 + 2 * MINUTE, T0 + 2 * HOUR), 1)]
    assert seen == [("notify", "tip", 1), ("notify", "tip", 2), ("capped", None, 0), ("notify", "training", 3)]


def test_a_replay_gets_the_same_decision_and_level_and_is_never_counted_twice(table: Any) -> None:
    state = _state(table, {"escalation": LADDER, "frequency_cap": {"max": 3, "window": "1h"}})
    first = [state.decide(PHISH, _event(n, T0 + n * MINUTE)) for n in range(1, 5)]
    assert [_seen(v) for v in first] == [("notify", "tip", 1), ("notify", "tip", 2), ("notify", "training", 3), ("capped", None, 0)]
    # a retried execution, a redelivered batch, later (another clock): the same, in any order
    replayed = _state(table, {"escalation": LADDER, "frequency_cap": {"max": 3, "window": "1h"}}, clock=Clock(T0 + DAY))
    assert [replayed.decide(PHISH, _event(n, T0 + n * MINUTE)) for n in (4, 2, 3, 1)] == [first[3], first[1], first[2], first[0]]
    items = table.scan()["Items"]
    assert sorted(i["sk"][:2] for i in items) == ["c#", "ma", "n#", "n#", "n#"]
    assert next(i for i in items if i["sk"] == "marker")["version"] == 4  # one write per match, none per replay
    # the next match is the fourth notified within the window, not the eighth
    assert _seen(state.decide(PHISH, _event(9, T0 + 2 * HOUR))) == ("notify", "training", 4)


@pytest.mark.parametrize("first", [2, 3])
def test_two_evaluations_racing_for_the_last_slot_one_wins(table: Any, first: int) -> None:
    coaching = {"escalation": LADDER, "frequency_cap": CAP}
    assert _state(table, coaching).decide(PHISH, _event(1, T0)).decision == "notify"
    shared = Paused(table, parties=2, reads_window=lambda request: request.get("ProjectionExpression") == "sk")
    verdicts: dict[int, Verdict] = {}
    rules = {2: PHISH, 3: MALWARE}  # the cap is across rules: two functions, two rules, one person

    def decide(n: int) -> None:
        verdicts[n] = shared.run(lambda: _state(shared, coaching).decide(rules[n], _event(n, T0 + n * MINUTE)), second=n != first)

    threads = [threading.Thread(target=decide, args=(n,)) for n in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(v.decision for v in verdicts.values()) == ["capped", "notify"], verdicts
    assert _seen(verdicts[first]) == ("notify", "tip", 2)  # whichever committed first took the slot
    # and every replay agrees with what was decided
    assert {n: _state(table, coaching).decide(rules[n], _event(n, T0 + n * MINUTE)) for n in (2, 3)} == verdicts


def test_the_cap_and_the_ladder_are_across_rules_per_person_and_per_tenant(table: Any) -> None:
    coaching = {"escalation": {"window": "1d", "steps": [{"at": 1, "level": "tip"}, {"at": 2, "level": "training"}]}, "frequency_cap": CAP}
    acme = _state(table, coaching)
    assert _seen(acme.decide(PHISH, _event(1, T0))) == ("notify", "tip", 1)
    assert _seen(acme.decide(MALWARE, _event(2, T0 + MINUTE, class_uid=2004))) == ("notify", "training", 2)  # another rule: same person
    assert acme.decide(PHISH, _event(3, T0 + 2 * MINUTE)).decision == "capped"
    assert _seen(acme.decide(PHISH, _event(4, T0 + 2 * MINUTE, who="bob@example.com"))) == ("notify", "tip", 1)  # another person
    assert acme.decide(PHISH, _event(5, T0 + 3 * MINUTE, who="AMY@example.com")).decision == "capped"  # keys ignore case
    globex = _state(table, coaching, tenant="globex")
    assert _seen(globex.decide(PHISH, _event(3, T0 + 2 * MINUTE, tenant="globex"))) == ("notify", "tip", 1)  # another tenant
    # an event without a person is notified at the first rung, and counted for nobody
    nobody = {"uid": "f" * 32, "time": T0, "class_uid": 4002, "metadata": {"tenant_uid": "acme"}}
    assert _seen(acme.decide(PHISH, nobody)) == ("notify", "tip", 1)
    assert not any("nobody" in i["pk"] for i in table.scan()["Items"])


def test_without_settings_nothing_is_recorded(table: Any) -> None:
    assert _state(table, {}).decide(PHISH, _event(1, T0)) == Verdict("notify")
    assert table.scan()["Items"] == []


# -- through the evaluation --------------------------------------------------------------------------


def test_a_batch_climbs_the_ladder_in_event_time_and_counts_capped_matches(table: Any) -> None:
    coaching = parse({"escalation": {**LADDER, "escalate_to": "manager"}, "frequency_cap": {"max": 4, "window": "1h"}})
    ruleset = build("acme", "v1", [PHISH, MALWARE])
    events = [_event(n, T0 + n * MINUTE) for n in (5, 1, 4, 2, 3)]  # out of order within the batch
    coach = CoachingState(table, "acme", coaching, Clock(T0)).decide
    result = evaluate("acme", events, ruleset, RuleState(table, "acme").decide, coach, "manager")
    assert dict(result.decisions) == {"notify": 4, "capped": 1}
    assert [(m["event"]["uid"][-1], m["escalation"]) for m in result.matches] == [
        ("1", {"level": "tip", "count": 1}), ("2", {"level": "tip", "count": 2}),
        ("3", {"level": "training", "count": 3}), ("4", {"level": "training", "count": 4}),
    ]  # fmt: skip
    assert result.matches[0]["actions"] == [
        {"type": "notify", "template": "Hi {user}"},
        {"type": "assign_training", "training_id": "phishing-101"},
    ]
    assert result.matches[2]["actions"] == result.matches[0]["actions"]  # PHISH assigns its course at every rung
    # the same batch again (a retry): the same matches, nothing counted twice
    again = evaluate("acme", events, ruleset, RuleState(table, "acme").decide, coach, "manager")
    assert (again.matches, again.decisions) == (result.matches, result.decisions)
    later = evaluate("acme", [_event(9, T0 + 2 * HOUR)], ruleset, RuleState(table, "acme").decide, coach, "manager")
    assert later.matches[0]["escalation"] == {"level": "manager", "count": 5}
    assert later.matches[0]["actions"][-1] == {"type": "escalate", "escalate_to": "manager"}
    # without coaching settings, the match record is what it always was
    plain = evaluate("acme", [_event(1, T0)], ruleset, RuleState(table, "acme").decide)
    assert "escalation" not in plain.matches[0] and plain.matches[0]["actions"] == result.matches[0]["actions"]
    # the webhook body carries the rung; a tenant without a ladder sees the body it always saw
    assert notify.notification("acme", later.matches[0])["escalation"] == {"level": "manager", "count": 5}
    assert "escalation" not in notify.notification("acme", plain.matches[0])


def _clear_caches(check_rules: Any) -> None:
    """The function's cached clients and rule store must talk to the mock, and no later test to it."""
    for cached in (aws.client, aws.resource, check_rules._rules):
        cached.cache_clear()


def test_check_events_for_rule_match_applies_the_tenants_settings(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from handlers import check_rules

    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "RULES_TABLE": "rules", "STATE_TABLE": "state", "CLAIMS_BUCKET": "claims",
                        "POWERTOOLS_SERVICE_NAME": "coachflow", "POWERTOOLS_METRICS_NAMESPACE": "Coachflow"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(check_rules.metrics, "namespace", "Coachflow")  # read at import, perhaps before the variable was set
    _clear_caches(check_rules)
    try:
        rules = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="rules",
            KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        RuleStore(rules).push("acme", [PHISH])
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="claims")  # the recent-events buffer
        context = LambdaContext({"function_name": "check", "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:check",
                                 "aws_request_id": "r", "deadline": time.time() + 60})  # fmt: skip
        batch = {"mode": "events", "tenant_id": "acme", "batch_id": "b1", "events": [_event(n, T0 + n * MINUTE) for n in (1, 2, 3)]}
        output = check_rules.handler(batch, context)
        assert output["decisions"] == {"notify": 3} and all("escalation" not in m for m in output["matches"])
        tenant_settings.update(rules, "acme", coaching=parse({"escalation": LADDER, "frequency_cap": {"max": 2, "window": "1h"}}))
        batch = {**batch, "batch_id": "b2", "events": [_event(n, T0 + n * MINUTE) for n in (4, 5, 6)]}
        output = check_rules.handler(batch, context)
        assert output["decisions"] == {"notify": 2, "capped": 1}
        assert [m["escalation"] for m in output["matches"]] == [{"level": "tip", "count": 1}, {"level": "tip", "count": 2}]
        assert check_rules.handler(batch, context) == output  # a Step Functions retry
    finally:
        _clear_caches(check_rules)


def test_the_tenant_verb_sets_shows_and_clears_coaching(table: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from cli.__main__ import main

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("COACHFLOW_INSTANCE", f"absent-{uuid.uuid4().hex}")  # no local environment's endpoint
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    boto3.resource("dynamodb", region_name="us-east-1").create_table(
        TableName="rules",
        KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}, {"AttributeName": "rule_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}, {"AttributeName": "rule_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    settings = tmp_path / "coaching.yaml"
    settings.write_text(
        "escalation:\n  window: 30d\n  escalate_to: manager\n  steps:\n"
        "    - {at: 1, level: tip}\n    - {at: 3, level: training}\n    - {at: 5, level: manager}\n"
        "frequency_cap: {max: 3, window: 1d}\n"
    )

    def tenant(*args: str) -> tuple[int, dict[str, Any] | None, str]:
        code = main(["tenant", "--tenant", "acme", "--table", "rules", *args])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out else None, err

    code, shown, _ = tenant("--coaching", str(settings), "--producer", "AIDA1")
    assert code == 0 and shown is not None and shown["producers"] == ["AIDA1"]
    assert shown["coaching"] == {"escalation": {"window": 2592000, "escalate_to": "manager", "steps": [
        {"at": 1, "level": "tip"}, {"at": 3, "level": "training"}, {"at": 5, "level": "manager"}]},
        "frequency_cap": {"max": 3, "window": 86400}}  # fmt: skip
    code, again, _ = tenant()  # shown back, the other flags keep working and change nothing else
    assert code == 0 and again == shown
    settings.write_text("frequency_cap: {max: 0, window: 1 day}\nescalation: {window: 7d, steps: [{at: 2, level: tip}]}\n")
    code, _, err = tenant("--coaching", str(settings))
    assert code == 1 and "frequency_cap.max" in err and "frequency_cap.window" in err and "the first step must be at 1" in err
    code, still, _ = tenant()
    assert still is not None and still["coaching"] == shown["coaching"]  # nothing written
    settings.write_text("")
    code, cleared, _ = tenant("--coaching", str(settings))
    assert code == 0 and cleared is not None and cleared["coaching"] == {} and cleared["producers"] == ["AIDA1"]
    assert tenant("--coaching", str(tmp_path / "missing.yaml"))[0] == 2
