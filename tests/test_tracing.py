"""X-Ray tracing of the four Lambda handlers (handlers/tracing.py): each is wrapped by Powertools'
Tracer, the wrapped handlers run with the tracer on, and nothing of an event, an address or a secret
reaches a trace.

The end-to-end test runs each handler Terraform names the way Lambda runs it with active tracing:
a fresh interpreter (a cold start) with the function's environment from the applied stack, the
variables Lambda adds (``LAMBDA_TASK_ROOT``, ``_X_AMZN_TRACE_ID`` with a sampled trace header) and
``AWS_XRAY_DAEMON_ADDRESS`` naming a UDP socket this test opens on 127.0.0.1: the real X-Ray SDK in
the handler's process sends its segment documents there, and the test reads every one. A process
per invocation, not this one: the SDK picks its Lambda context at import, and Powertools' Tracer
configuration and botocore patch are process-wide, so turning them on here would reach every later
test in the worker. Everything else (tests, the emulator) runs with the tracer off.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import botocore.client
import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.models.segment import Segment
from aws_xray_sdk.core.models.subsegment import Subsegment

from cli.redrive import lambda_record
from emulator.stack import CREDENTIALS, EXAMPLES, ROOT
from handlers import channels, tenant_settings
from handlers.ingest import normalize_payload
from handlers.tracing import RedactingEmitter, tracer
from tests.helpers import LAMBDA_CONTEXT, TEST_PRODUCER, batch_input, image_commands, push, read_received, set_secret

HANDLERS = image_commands()  # what Terraform's image commands name
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
XRAY_NOISE = re.compile(r"segment|x-?ray|daemon|entity|discarded|sampl", re.IGNORECASE)  # what the X-Ray SDK logs

RUNNER = r"""
import importlib, json, sys, time
spec = json.loads(sys.stdin.read())
module, function = spec["command"].rsplit(".", 1)
handler = getattr(importlib.import_module(module), function)
{context}
try:
    answer = {"result": handler(spec["event"], Context())}
except Exception as exc:  # reported, as the runtime reports a function error
    answer = {"error": type(exc).__name__}
print(json.dumps(answer, default=str))
""".replace("{context}", LAMBDA_CONTEXT)


def _handler_wrapper(function: Any) -> Any:
    """The Tracer's wrapper in a decorated handler's chain of wrappers (functools.wraps), or None."""
    while function is not None:
        if function.__code__.co_qualname == "Tracer.capture_lambda_handler.<locals>.decorate":  # wraps() copies __qualname__
            return function
        function = getattr(function, "__wrapped__", None)
    return None


@pytest.mark.parametrize("key", sorted(HANDLERS))
def test_each_handler_is_wrapped_by_the_tracer_and_captures_no_response(key: str):
    module, name = HANDLERS[key].rsplit(".", 1)
    wrapper = _handler_wrapper(getattr(importlib.import_module(module), name))
    assert wrapper is not None, f"{HANDLERS[key]} is not decorated with tracer.capture_lambda_handler"
    closure = inspect.getclosurevars(wrapper).nonlocals
    assert closure["self"] is tracer  # the shared tracer: botocore only, the redacting emitter
    assert closure["capture_response"] is False  # its return value never goes into segment metadata


def test_outside_lambda_the_tracer_is_off_and_nothing_is_patched():
    # These tests (and the emulator, which also sets POWERTOOLS_TRACE_DISABLED): no daemon to send to.
    assert "LAMBDA_TASK_ROOT" not in os.environ
    assert tracer.disabled and not global_sdk_config.sdk_enabled()
    assert not hasattr(botocore.client, "_xray_enabled")  # the X-Ray SDK's mark of a patched botocore


def _udp_socket() -> socket.socket:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    receiver.bind(("127.0.0.1", 0))
    return receiver


def _drain(receiver: socket.socket) -> list[str]:
    """Every datagram waiting on the socket (the sender has exited: they all arrived)."""
    receiver.settimeout(0.5)
    datagrams = []
    while True:
        try:
            datagrams.append(receiver.recv(65536).decode("utf-8"))
        except TimeoutError:
            return datagrams


def test_the_emitter_drops_exception_messages_and_metadata_before_sending():
    # The X-Ray SDK records an exception's message in the segment (a message may quote what failed:
    # SES names the recipients it refuses) and Powertools puts responses and errors into metadata.
    subsegment = Subsegment("## deliver", "local", Segment("fn", traceid="1-5759e988-bd862e3fe1be46a994272793", sampled=True))
    try:
        raise RuntimeError("MessageRejected: the following identities failed the check: jo@example.com")
    except RuntimeError as exc:
        subsegment.add_exception(exc, [("handlers/senders.py", 101, "_email", "answer = self.ses().send_email(")])
    subsegment.put_metadata("handler response", {"user": {"email_addr": "jo@example.com"}}, "coachflow")
    subsegment.put_annotation("channel", "email")
    subsegment.close()

    receiver = _udp_socket()
    try:
        address = "127.0.0.1:%d" % receiver.getsockname()[1]
        UDPEmitter(address).send_entity(subsegment)  # the SDK's own: what would have left the process
        RedactingEmitter(address).send_entity(subsegment)
        plain, redacted = _drain(receiver)
    finally:
        receiver.close()
    assert plain.count("jo@example.com") == 2
    header, _, body = redacted.partition("\n")
    assert header == '{"format":"json","version":1}' and "jo@example.com" not in redacted
    document = json.loads(body)
    (exception,) = document["cause"]["exceptions"]
    assert exception["type"] == "RuntimeError" and "message" not in exception and exception["stack"][0]["label"] == "_email"
    assert "metadata" not in document and document["annotations"] == {"channel": "email"} and document["fault"] is True


def _keys(document: Any) -> set[str]:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in _keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in _keys(v)}
    return set()


class Traced:
    """Runs one handler the way Lambda runs it with active tracing, and reads what it sent."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack

    def run(self, key: str, event: dict[str, Any], sensitive: list[str], tracing: bool = True) -> tuple[dict[str, Any], list[Any]]:
        function = self.stack.client("lambda").get_function(FunctionName=self.stack.outputs["function_names"][key])["Configuration"]
        variables = function["Environment"]["Variables"]
        assert "POWERTOOLS_TRACE_DISABLED" not in variables  # Terraform leaves the tracer on
        trace_id = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
        parent = secrets.token_hex(8)
        receiver = _udp_socket()
        environment = {
            **variables,
            **CREDENTIALS,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "AWS_ENDPOINT_URL": self.stack.endpoint,
            # What Lambda sets for a traced invocation: Powertools' Tracer turns itself on
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": function["FunctionName"],
            "_X_AMZN_TRACE_ID": f"Root={trace_id};Parent={parent};Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % receiver.getsockname()[1],
        }
        if not tracing:
            environment["POWERTOOLS_TRACE_DISABLED"] = "true"  # as the emulator sets it
        spec = {"command": HANDLERS[key], "event": event, "function_name": function["FunctionName"],
                "function_arn": function["FunctionArn"]}  # fmt: skip
        try:
            done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(spec), capture_output=True, text=True,
                                  timeout=120, cwd=ROOT, env=environment)  # fmt: skip
            datagrams = _drain(receiver)
        finally:
            receiver.close()
        assert done.returncode == 0, done.stderr[-4000:]
        # No "cannot find the current segment", no discarded subsegment, no failed send.
        assert not XRAY_NOISE.search(done.stderr), done.stderr[-4000:]
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

        documents = []
        for datagram in datagrams:
            header, _, body = datagram.partition("\n")
            assert header == '{"format":"json","version":1}'
            documents.append(json.loads(body))
            for value in sensitive:
                assert value not in datagram, f"{key}: {value!r} in a trace: {datagram[:2000]}"
            assert not EMAIL.search(datagram), f"{key}: an email address in a trace: {datagram[:2000]}"
        assert all(d["trace_id"] == trace_id for d in documents)
        keys = _keys(documents)
        assert "metadata" not in keys and "message" not in keys  # no response, no error text
        assert not any("url" in (d.get("http") or {}).get("request", {}) for d in documents)  # no HTTP subsegment
        if tracing:
            (handler,) = [d for d in documents if d["name"] == "## handler"]
            assert handler["parent_id"] == parent  # a child of the function's segment (Lambda's own)
            assert handler["annotations"]["ColdStart"] is True and handler["annotations"]["Service"] == variables["POWERTOOLS_SERVICE_NAME"]
        return answer, documents


def _named(documents: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["name"] == name]


@pytest.mark.integration
def test_each_handler_runs_traced_and_its_segments_hold_no_event_content(stack, webhook):
    base, record = webhook
    token = uuid.uuid4().hex[:10]
    email, name = f"trace.canary.{token}@example.com", f"Canary Person {token}"
    secret, hook_path, teams_path = f"signing-{token}", f"hook-{token}", f"workflow-{token}"
    raw = (EXAMPLES / "okta" / "user_account_lock.json").read_text(encoding="utf-8")
    raw = raw.replace("alex.rivera@example.com", email).replace("Alex Rivera", name)
    # What the event says (and what the tenant's secrets are): none of it may reach a trace.
    sensitive = [email, name, "198.51.100.44", "Max sign in attempts exceeded", "00u8f2k1d9RiverAl697", "Mozilla/5.0",
                 secret, hook_path, teams_path, f"mode-{token}"]  # fmt: skip
    traced = Traced(stack)
    table = stack.resource("dynamodb").Table(stack.outputs["rules_table"])

    # normalize: a raw okta record of a tenant without rules (the execution it starts matches nothing)
    producer_only = f"trace-n-{token}"
    tenant_settings.update(table, producer_only, producers=[TEST_PRODUCER])
    message = {
        "MessageId": str(uuid.uuid4()), "ReceiptHandle": "tracing-test", "Body": raw,
        "Attributes": {"SenderId": TEST_PRODUCER, "SentTimestamp": str(int(time.time() * 1000)), "ApproximateReceiveCount": "1"},
        "MessageAttributes": {"tenant_id": {"DataType": "String", "StringValue": producer_only},
                              "source": {"DataType": "String", "StringValue": "okta"}},
    }  # fmt: skip
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["raw_events_queue_url"],
                                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
    answer, documents = traced.run("normalize", {"Records": [lambda_record(message, queue_arn, CREDENTIALS["AWS_REGION"])]}, sensitive)
    assert answer == {"result": {"batchItemFailures": []}}
    (handler,) = _named(documents, "## handler")
    assert {k: handler["annotations"][k] for k in ("messages", "failed_messages", "records_normalized")} == {
        "messages": 1, "failed_messages": 0, "records_normalized": 1,
    }  # fmt: skip
    assert len(_named(documents, "## ingest")) == 1
    (start,) = _named(documents, "## handlers.normalize._start")
    assert re.fullmatch(r"[0-9a-f]+", start["annotations"]["batch_id"]) and start["annotations"]["events"] == 1
    assert {d["name"] for d in documents if d.get("namespace") == "aws"} >= {"dynamodb", "states"}  # botocore's calls, traced

    # check_rules: the event (its person's address inside) against the tenant's rule
    tenant = f"trace-{token}"
    rule = {"rule_id": "locked", "title": "Your account was locked", "match": {"class_uid": [3001], "activity_id": [9]}}
    push(stack, tenant, [rule], f"{base}/hooks/{tenant}/{hook_path}")
    settings = {"default": ["email", "teams", "webhook"], "email": {"sender": "coaching@acme.example", "recipient_domains": ["example.com"]},
                "teams": {}}  # fmt: skip
    tenant_settings.update(table, tenant, channels=channels.parse(settings))
    set_secret(stack, tenant, secret)
    set_secret(stack, f"{tenant}/teams", json.dumps({"webhook_url": f"{base}/teams/{tenant}/{teams_path}"}))
    events = [o.event for o in normalize_payload(raw, "okta", tenant) if o.kind == "normalized"]
    assert events[0]["user"]["email_addr"] == email
    batch = json.loads(batch_input(tenant, events).payload)
    answer, documents = traced.run("check_rules", batch, sensitive)
    output = answer["result"]
    assert output["match_count"] == 1 and email in json.dumps(output["matches"])  # the content went through
    (handler,) = _named(documents, "## handler")
    assert {k: handler["annotations"][k] for k in ("tenant_id", "batch_id", "mode", "events", "match_count")} == {
        "tenant_id": tenant, "batch_id": batch["batch_id"], "mode": "events", "events": 1, "match_count": 1,
    }  # fmt: skip
    assert _named(documents, "## handlers.check_rules._load")  # the rule store's load
    (evaluation,) = _named(documents, "## evaluate")
    assert {k: evaluation["annotations"][k] for k in ("events", "rules", "matches")} == {"events": 1, "rules": 1, "matches": 1}

    # trigger_notifications: the match delivered by email (SES), Teams and the signed webhook
    sent_before = len(stack.sent_emails())
    answer, documents = traced.run("trigger_notifications", output, sensitive)
    assert answer["result"]["delivered"] == 3 and answer["result"]["failed"] == 0
    (handler,) = _named(documents, "## handler")
    assert (handler["annotations"]["tenant_id"], handler["annotations"]["delivered"], handler["annotations"]["failed"]) == (tenant, 3, 0)
    assert sorted(d["annotations"]["channel"] for d in _named(documents, "## deliver")) == ["email", "teams", "webhook"]
    assert sum(m["destinations"]["ToAddresses"] == [email] for m in stack.sent_emails()[sent_before:]) == 1  # others' mail aside
    assert sorted(r["path"] for r in read_received(record)) == sorted([f"/hooks/{tenant}/{hook_path}", f"/teams/{tenant}/{teams_path}"])

    # A failed invocation: the error's type and where it was raised are traced, not its text
    answer, documents = traced.run("check_rules", {"mode": f"mode-{token}", "tenant_id": tenant}, sensitive)
    assert answer == {"error": "UnknownException"}
    (handler,) = _named(documents, "## handler")
    (exception,) = handler["cause"]["exceptions"]
    assert handler["fault"] is True and exception["type"] == "ValueError" and exception["stack"]

    # sweep, traced; and with POWERTOOLS_TRACE_DISABLED (the emulator's setting) nothing is sent at all
    answer, documents = traced.run("sweep", {"scheduled_time": "2026-12-06T08:00:00Z"}, sensitive)
    (handler,) = _named(documents, "## handler")
    due, started = answer["result"]["due"], answer["result"]["started"]
    assert (handler["annotations"]["due"], handler["annotations"]["started"]) == (len(due), len(started))
    answer, documents = traced.run("sweep", {"scheduled_time": "2026-12-06T08:05:00Z"}, sensitive, tracing=False)
    assert "started" in answer["result"] and documents == []
