"""Faults on demand (``emulator.faults``): each kind, injected into a real embedded AWS by a plan
file, seen by a client exactly as AWS would show it; the plan is re-read when it changes."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator import faults
from emulator.faults import DEFAULT_PLAN, Plan, Request, read_log
from emulator.stack import LocalEnvironment
from tests.helpers import FIXTURE_ROLE, fixture_function, sigv4, wait_for

NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    plan = tmp_path_factory.mktemp("faults") / "plan.json"
    env = LocalEnvironment(name=f"test-faults-{uuid.uuid4().hex[:8]}", fault_plan=plan)
    env.start()
    yield env
    env.stop()
    shutil.rmtree(env.workdir, ignore_errors=True)


def use(env: LocalEnvironment, plan: dict[str, Any]) -> None:
    """Put a plan in force (the emulator looks at the file four times a second)."""
    assert env.fault_plan is not None
    env.fault_plan.write_text(json.dumps(plan))
    time.sleep(0.6)


def client(env: LocalEnvironment, service: str) -> Any:
    return env.session().client(service, endpoint_url=env.endpoint, config=NO_RETRIES)


def injected(env: LocalEnvironment, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in read_log(env.fault_log) if entry["kind"] == kind]


@pytest.fixture
def counted(faulty: LocalEnvironment, tmp_path: Path) -> tuple[str, Path]:
    """A function that counts its runs in a file: (name, counter file)."""
    counter = tmp_path / "calls"
    arn = fixture_function(faulty, "tests.fixtures.lambdas.flaky", {"FLAKY_COUNTER": str(counter), "FLAKY_FAILURES": "0"})
    return arn.split(":")[-1], counter


def runs(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


pytestmark = pytest.mark.integration


def test_plans_are_checked_and_name_what_is_wrong():
    assert not Plan.parse({}).active and Plan.parse(DEFAULT_PLAN).active
    with pytest.raises(ValueError, match="unknown key.*dynamo_throttle"):
        Plan.parse({"dynamo_throttle": 0.1})
    with pytest.raises(ValueError, match=r"lambda\[0\]: error must be one of"):
        Plan.parse({"lambda": [{"functions": ["*"], "share": 0.1, "error": "Boom"}]})
    with pytest.raises(ValueError, match="s3_errors must be a share between 0 and 1"):
        Plan.parse({"s3_errors": 1.5})
    with pytest.raises(ValueError, match="seed must be an integer"):
        Plan.parse({"seed": "one"})


def test_a_plan_given_at_start_is_in_force_before_the_watcher_first_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # In this process, with moto's front door and the injector restored afterwards, and no watcher
    # thread started: the plan must be in force from the server's first request (the soak's faults
    # start with its apply), not from whenever the watcher first reads the file.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", DomainDispatcherApplication.__call__)
    monkeypatch.setattr(faults, "_injector", faults.Injector())
    monkeypatch.setattr(threading.Thread, "start", lambda self: None)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"dynamodb_throttle": 0.5}))
    faults.install(plan, None)
    assert faults._injector.plan == Plan(dynamodb_throttle=0.5)


def test_requests_are_told_apart_as_aws_signs_them():
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Acoachflow-local-normalize%3A7"
    invoke = Request.of({"HTTP_AUTHORIZATION": sigv4("lambda"), "PATH_INFO": f"/2015-03-31/functions/{arn}/invocations"})
    assert invoke == Request("lambda", "Invoke", "coachflow-local-normalize")
    put = Request.of({"HTTP_AUTHORIZATION": sigv4("dynamodb"), "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"})
    assert put == Request("dynamodb", "PutItem", "")


def test_lambda_errors_come_before_the_function_runs(faulty, counted):
    name, counter = counted
    lam = client(faulty, "lambda")
    use(faulty, {"lambda": [{"functions": [name], "share": 1.0, "error": "ServiceException"}]})
    with pytest.raises(lam.exceptions.ServiceException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    use(faulty, {"lambda": [{"functions": [name], "share": 1.0, "error": "TooManyRequestsException"}]})
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert runs(counter) == 0
    use(faulty, {"lambda": [{"functions": ["someone-else"], "share": 1.0, "error": "ServiceException"}]})
    assert lam.invoke(FunctionName=name, Payload=b'{"n": 1}')["Payload"].read() == b'{"n": 1}'
    assert runs(counter) == 1
    assert [e["error"] for e in injected(faulty, "lambda") if e["function"] == name] == ["ServiceException", "TooManyRequestsException"]


def test_a_timeout_fault_lets_the_work_happen_and_reports_it_failed(faulty, counted):
    name, counter = counted
    use(faulty, {"lambda": [{"functions": [name], "share": 1.0, "error": "Timeout"}]})
    response = client(faulty, "lambda").invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Sandbox.Timedout"
    assert runs(counter) == 1  # the handler ran to its end: its effects are real


def test_dynamodb_writes_are_throttled_and_reads_are_not(faulty):
    ddb = client(faulty, "dynamodb")
    table = f"faults-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    ddb.put_item(TableName=table, Item={"pk": {"S": "before"}})
    use(faulty, {"dynamodb_throttle": 1.0})
    with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException):
        ddb.put_item(TableName=table, Item={"pk": {"S": "during"}})
    with pytest.raises(ddb.exceptions.ProvisionedThroughputExceededException):
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "t"}}}}])
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "before"}})["Item"]
    use(faulty, {})
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "during"}})  # refused, not half-done
    ddb.put_item(TableName=table, Item={"pk": {"S": "after"}})  # the plan changed: no more faults


def test_a_share_is_a_share(faulty):
    ddb = client(faulty, "dynamodb")
    table = f"share-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    use(faulty, {"seed": 7, "dynamodb_throttle": 0.3})
    throttled = 0
    for n in range(200):
        try:
            ddb.put_item(TableName=table, Item={"pk": {"S": str(n)}})
        except ddb.exceptions.ProvisionedThroughputExceededException:
            throttled += 1
    use(faulty, {})
    assert 30 <= throttled <= 90  # 60 expected; binomial(200, 0.3) is outside this range once in ~10^5


def test_s3_object_requests_fail_as_s3_fails(faulty):
    s3 = client(faulty, "s3")
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    use(faulty, {"s3_errors": 1.0})
    codes = set()
    for n in range(12):
        with pytest.raises(ClientError) as failed:
            s3.put_object(Bucket=bucket, Key=f"k{n}", Body=b"x")
        codes.add(failed.value.response["Error"]["Code"])
    assert codes == {"InternalError", "SlowDown"}
    s3.list_objects_v2(Bucket=bucket)  # bucket operations are not object reads or writes
    use(faulty, {})
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_lost_start_execution_answer_is_retried_into_the_same_execution(faulty):
    sfn = client(faulty, "stepfunctions")
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 2, "End": True}}}
    machine = sfn.create_state_machine(name=f"faults-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=FIXTURE_ROLE)
    arn = machine["stateMachineArn"]
    use(faulty, {"lost_start_responses": 1.0})
    with pytest.raises(ClientError) as lost:
        sfn.start_execution(stateMachineArn=arn, name="once", input="{}")
    assert lost.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    use(faulty, {})
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]  # it started nonetheless
    # the caller's retry: the same name and input while it runs is the same execution, as in AWS
    assert sfn.start_execution(stateMachineArn=arn, name="once", input="{}")["executionArn"] == execution["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED", 30, "the execution")
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="once", input="{}")
    assert injected(faulty, "lost_start_response")


def test_processed_messages_are_redelivered_by_the_plan(faulty, tmp_path):
    seen = tmp_path / "seen.jsonl"
    name = fixture_function(faulty, "tests.fixtures.lambdas.sqs_partial", {"SEEN_FILE": str(seen)})
    sqs = faulty.client("sqs")
    url = sqs.create_queue(QueueName=f"redeliver-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    use(faulty, {"sqs_redeliver": 1.0})
    faulty.client("lambda").create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=1,
                                                        FunctionResponseTypes=["ReportBatchItemFailures"])  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody="done")

    def receipts() -> list[int]:
        lines = seen.read_text().splitlines() if seen.exists() else []
        return [int(json.loads(line)["receive_count"]) for line in lines]

    wait_for(lambda: len(receipts()) >= 3, 60, "the processed message to come back")
    use(faulty, {})
    wait_for(lambda: int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]) == 0
             and int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessagesNotVisible"]) == 0,
             60, "the message to be deleted once the faults stop")  # fmt: skip
    counts = receipts()
    assert counts[:3] == [1, 2, 3]  # the same message, received again and again: SQS's receive count says so
    assert injected(faulty, "sqs_redeliver")


def test_a_broken_plan_keeps_the_previous_one(faulty, counted):
    name, counter = counted
    use(faulty, {"lambda": [{"functions": [name], "share": 1.0, "error": "ServiceException"}]})
    assert faulty.fault_plan is not None
    faulty.fault_plan.write_text('{"lambda": [')  # half-written
    time.sleep(0.6)
    with pytest.raises(ClientError):
        client(faulty, "lambda").invoke(FunctionName=name, Payload=b"{}")
    assert "keeping the previous plan" in (faulty.workdir / "emulator.log").read_text()
    use(faulty, {})
