"""The soak (``./build.sh soak``): its workload, its reconciliation, and a real run with faults."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from emulator.soak import Expectation, Observed, expected_notifications, load_plan, reconcile
from emulator.stack import EXAMPLES, ROOT
from emulator.workload import HOSTILE_KINDS, STRANGER, Workload, build, producer
from handlers.normalize import SQS_FORBIDDEN
from handlers.webhook import TOO_LATE


@pytest.fixture(scope="module")
def workload() -> Workload:
    w = build(600, 3, seed=5, examples=EXAMPLES, corpus=None)
    for n, message in enumerate(w.messages):
        message.message_id = f"m{n}"
    return w


def test_the_workload_is_what_the_seed_says(workload):
    again = build(600, 3, seed=5, examples=EXAMPLES, corpus=None)
    assert [m.body for m in again.messages] == [m.body for m in workload.messages]
    assert [m.body for m in build(600, 3, seed=6, examples=EXAMPLES, corpus=None).messages] != [m.body for m in workload.messages]
    assert workload.records >= 600 and workload.tenants == ["acme", "globex", "initech"]
    assert 0.015 <= workload.hostile_records / workload.records <= 0.04
    uids = [e.uid for m in workload.messages for e in m.expected if e.uid]
    assert len(uids) == len(set(uids))  # every record is a different event
    assert Counter(m.tenant for m in workload.messages if not m.hostile).keys() == {"acme", "globex", "initech"}
    assert not any(e.kind == "rejected" for m in workload.messages if not m.hostile for e in m.expected)


def test_hostile_messages_get_the_outcome_their_kind_deserves():
    w = build(4000, 3, seed=1, examples=EXAMPLES, corpus=None)
    hostile = [m for m in w.messages if m.hostile]
    assert {m.hostile for m in hostile} == set(HOSTILE_KINDS)
    assert not [m.hostile for m in hostile if SQS_FORBIDDEN.search(m.body)]  # hostile, but what a producer can send
    for message in hostile:
        reasons = {e.reason for e in message.expected}
        if message.hostile == "stranger":
            assert message.sender == STRANGER and reasons == {"unregistered_producer"}
        elif message.hostile == "no_tenant":
            assert reasons == {"missing_tenant"}
        elif message.hostile == "unknown_source":
            assert reasons == {"unknown_source"}
        elif message.hostile == "oversized":
            assert reasons == {"oversized"} and len(message.body) > 200 * 1024  # too big for a dead letter too
        else:
            assert message.sender == producer(str(message.tenant))


def _chosen(expected: Expectation) -> set[str]:
    """What a correct run acknowledges: every match of a rule without suppression, and one of each
    person's matches of a suppressed rule."""
    first: dict[tuple[str, str, str], str] = {}
    for nid, group in sorted(expected.candidates.items()):
        first.setdefault(group, nid)
    return expected.exact | set(first.values())


def _perfect(w: Workload, expected: Expectation) -> Observed:
    """What a run that broke nothing would record."""
    seen = Observed(redrive={"exit": 0, "depth_before": 3, "depth_after": 3, "replayed": 0})
    for message in w.messages:
        for index, outcome in enumerate(message.expected):
            if outcome.kind == "normalized":
                seen.evaluated[str(outcome.uid)] += 1
            elif outcome.kind == "ignored":
                seen.ignored[(str(message.message_id), index)] += 1
            else:
                seen.rejected[(str(message.message_id), index)] += 1
    seen.statuses["SUCCEEDED"] = 12
    ids = sorted(_chosen(expected))
    seen.ledger["delivered"] = len(ids)
    seen.ledger_ids = set(ids)
    seen.acknowledged = {"acme": (False, Counter(ids[::2])), "globex": (True, Counter(ids[1::2]))}
    return seen


def test_a_run_that_broke_nothing_passes_and_every_kind_of_breakage_fails(workload):
    expected = expected_notifications(workload)
    assert expected.exact and expected.groups  # the starter pack matches the examples, with and without suppression
    perfect = _perfect(workload, expected)
    report = reconcile(workload, perfect, expected)
    assert report.problems == [], report.problems
    assert ("  lost / conflicting", "0 / 0") in report.rows

    normalized = next(e.uid for m in workload.messages for e in m.expected if e.kind == "normalized")
    ignored = next((str(m.message_id), i) for m in workload.messages for i, e in enumerate(m.expected) if e.kind == "ignored")
    exact_id = sorted(expected.exact)[0]
    group = next(g for g in expected.groups if sum(v == g for v in expected.candidates.values()) > 1)
    coached, other = sorted(nid for nid, g in expected.candidates.items() if g == group)[:2]

    def broken(change) -> list[str]:
        seen = copy.deepcopy(perfect)
        change(seen)
        return reconcile(workload, seen, expected).problems

    def acknowledge(seen: Observed, nid: str, tenant: str = "acme") -> None:
        seen.acknowledged[tenant][1][nid] += 1
        seen.ledger_ids.add(nid)

    def forget(seen: Observed, nid: str) -> None:
        for _, counts in seen.acknowledged.values():
            counts.pop(nid, None)
        seen.ledger_ids.discard(nid)

    assert "1 records without an outcome" in broken(lambda s: s.evaluated.pop(str(normalized)))[0]
    assert "1 with another outcome" in broken(lambda s: s.rejected.update({ignored: 1}))[0]
    assert "never sent" in broken(lambda s: s.rejected.update({("nobody", 0): 1}))[0]
    at_acme, at_globex = sorted(perfect.acknowledged["acme"][1])[0], sorted(perfect.acknowledged["globex"][1])[0]
    assert "delivered twice to receivers that do not deduplicate" in broken(lambda s: s.acknowledged["acme"][1].update({at_acme: 1}))[0]
    # ...unless the deliverer gave up at its deadline before the receiver's answer came: it acted, and
    # nothing can tell the deliverer so; any other failure logged for it leaves the duplicate unexplained
    late = f"webhook http://127.0.0.1:1 {TOO_LATE}"

    def twice(seen: Observed, errors: list[str]) -> None:
        seen.acknowledged["acme"][1][at_acme] += 1
        seen.not_delivered[at_acme] = errors

    assert broken(lambda s: twice(s, [late])) == []
    late_seen = copy.deepcopy(perfect)
    twice(late_seen, [late])
    assert ("  delivered twice", "1 at receivers that do not deduplicate (1 after the receiver answered later than the "
                                 "deliverer's deadline), 0 at receivers that do") in reconcile(workload, late_seen, expected).rows  # fmt: skip
    unrecorded = broken(lambda s: twice(s, ["webhook http://127.0.0.1:1 answered HTTP 500", "unrecorded"]))
    assert "not after a late answer" in unrecorded[0] and "answered HTTP 500" in unrecorded[0]
    assert broken(lambda s: s.acknowledged["globex"][1].update({at_globex: 1})) == []  # it deduplicates
    assert "still running" in broken(lambda s: s.statuses.update({"RUNNING": 1}))[0]
    assert "evaluation was lost" in broken(lambda s: s.failed_errors.update({"ClientError": 1}))[0]
    assert broken(lambda s: s.failed_errors.update({"AllNotificationsFailedException": 1})) == []  # waits in the ledger
    assert "exceeded Step Functions' limit" in broken(lambda s: s.task_failures.update({"States.DataLimitExceeded": 1}))[0]
    assert "never acknowledged" in broken(lambda s: forget(s, exact_id))[0]
    assert "no rule should have sent" in broken(lambda s: acknowledge(s, "f" * 32))[0]
    assert "pending" in broken(lambda s: s.ledger.update({"pending": 1}))[0]
    assert "unprocessed" in broken(lambda s: setattr(s, "unprocessed", 2))[0]
    assert "the redrive failed" in broken(lambda s: s.redrive.update({"exit": 1}))[0]
    assert "no receiver acknowledged" in broken(lambda s: s.ledger_ids.add("e" * 32))[0]
    # suppression: the person is coached once, by any one of their events; never twice, never not at all
    assert broken(lambda s: (forget(s, coached), acknowledge(s, other))) == []
    assert "coached more than once by a suppressed rule" in broken(lambda s: acknowledge(s, other))[0]
    assert "never acknowledged" in broken(lambda s: forget(s, coached))[0]


def test_a_fault_plan_is_checked_before_anything_starts(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("dynamodb_throttle: 0.1\nlambda:\n  - {functions: ['*-normalize'], share: 0.5, error: Timeout}\n")
    assert load_plan(str(plan))["dynamodb_throttle"] == 0.1
    assert load_plan("none") == {}
    plan.write_text("dynamo_throttle: 0.1\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_plan(str(plan))
    bad = subprocess.run([sys.executable, "-m", "emulator.soak", "--faults", str(plan), "--events", "10"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "dynamo_throttle" in bad.stderr


@pytest.mark.own_environment
@pytest.mark.integration
def test_a_soak_of_a_thousand_records_with_faults_loses_nothing():
    """The real thing, small: the built-in fault plan, three tenants' receivers misbehaving, the
    redrive, and the reconciliation (./build.sh soak --events 1000)."""
    run = subprocess.run([sys.executable, "-m", "emulator.soak", "--events", "1000", "--seed", "3"], cwd=ROOT,
                         capture_output=True, text=True, timeout=1500, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    print(run.stdout[-6000:])  # the table, in the test's output when it fails
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = run.stdout[run.stdout.index("==== coachflow soak") :]
    assert re.search(r"lost / conflicting\s+0 / 0\n", table)
    # none, or only after a receiver's answer came later than the deliverer's deadline (two loaded cores)
    failed = re.search(r"attempts that failed \(deliverers' logs\)\s+([\d,]+) ", table)
    assert failed and int(failed.group(1).replace(",", "")) > 0, table  # the receivers' injected errors, read from the logs
    twice, late = re.search(r"delivered twice\s+(\d+) at receivers that do not deduplicate \((\d+) after", table).groups()
    assert twice == late, table
    injected = next(line for line in table.splitlines() if line.startswith("faults injected (AWS)"))
    assert "none" not in injected  # the faults really happened
