"""The image's Python content suffices: ``./build.sh package DIR`` (requirements.lock, installed with
its hashes, and handlers/) is all a clean interpreter gets (``python -I -S``: no site-packages, no
PYTHONPATH, so nothing of the development environment), and every handler Terraform names in an
image command imports and runs there on an example event, with the environment Terraform gave its
function, against the embedded AWS.

The Lambda runtime itself cannot run here (no Docker): a small stand-in calls the handler with the
event and a context object, as the runtime interface client does. The Dockerfile's own build is
checked by CI's image job (.github/workflows/ci.yml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cli.redrive import lambda_record
from emulator.stack import CREDENTIALS, EXAMPLES, ROOT
from tests.helpers import LAMBDA_CONTEXT, batch_input, events_from, image_commands, push

pytestmark = pytest.mark.integration

RUNNER = r"""
import importlib, json, os, sys, time
package, spec = sys.argv[1], json.loads(sys.stdin.read())
sys.path.insert(0, package)
os.environ.update(spec["environment"])
module, function = spec["command"].rsplit(".", 1)
loaded = importlib.import_module(module)
assert loaded.__file__.startswith(package), loaded.__file__
{context}
outside = sorted(m.__file__ for m in list(sys.modules.values())
                 if getattr(m, "__file__", None) and "site-packages" in m.__file__ and not m.__file__.startswith(package))
result = getattr(loaded, function)(spec["event"], Context())
print(json.dumps({"result": result, "outside": outside}, default=str))
""".replace("{context}", LAMBDA_CONTEXT)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("package") / "task-root"
    # Under a bytecode prefix (./build.sh test sets one), pip's compiling writes nothing there: the
    # bytecode of the temporary directory it installs through would pile up, a new one every run.
    prefix = target.parent / "pycache-prefix"
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
    done = subprocess.run(["./build.sh", "package", str(target)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    temporary = prefix / Path(tempfile.gettempdir()).resolve().relative_to("/")  # the prefix mirrors absolute paths
    assert not list(temporary.rglob("*.pyc"))[:3]
    assert list(target.glob("pydantic/__pycache__/*.pyc"))  # compiled beside the sources, as in the image
    return target


def _run(stack: Any, package: Path, key: str, command: str, event: dict[str, Any]) -> dict[str, Any]:
    function = stack.client("lambda").get_function(FunctionName=stack.outputs["function_names"][key])["Configuration"]
    environment = {
        **function["Environment"]["Variables"],
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": stack.endpoint,
        "AWS_DEFAULT_REGION": CREDENTIALS["AWS_REGION"],
    }
    spec = {"environment": environment, "command": command, "event": event,
            "function_name": function["FunctionName"], "function_arn": function["FunctionArn"]}  # fmt: skip
    done = subprocess.run([sys.executable, "-I", "-S", "-c", RUNNER, str(package)], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=120, cwd=package)  # fmt: skip
    assert done.returncode == 0, f"{command}: {done.stderr[-4000:]}"
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["outside"] == [], f"{command} imported from outside the package: {answer['outside'][:5]}"
    return answer["result"]  # type: ignore[no-any-return]


def test_terraform_names_exactly_the_four_handlers():
    assert image_commands() == {
        "normalize": "handlers.normalize.handler",
        "check_rules": "handlers.check_rules.handler",
        "trigger_notifications": "handlers.trigger_notifications.handler",
        "sweep": "handlers.sweep.handler",
    }


def test_every_handler_runs_from_the_package_alone(stack, package):
    tenant = f"pkg-{uuid.uuid4().hex[:8]}"
    push(stack, tenant, [{"rule_id": "locked", "match": {"class_uid": [3001], "activity_id": [9]}}], None)
    body = (EXAMPLES / "okta" / "user_account_lock.json").read_text(encoding="utf-8")
    message = {
        "MessageId": str(uuid.uuid4()), "ReceiptHandle": "package-test", "Body": body,
        "Attributes": {"SenderId": "testing", "SentTimestamp": str(int(time.time() * 1000)), "ApproximateReceiveCount": "1"},
        "MessageAttributes": {"tenant_id": {"DataType": "String", "StringValue": tenant},
                              "source": {"DataType": "String", "StringValue": "okta"}},
    }  # fmt: skip
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=stack.outputs["raw_events_queue_url"],
                                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
    events = {
        "normalize": {"Records": [lambda_record(message, queue_arn, CREDENTIALS["AWS_REGION"])]},
        "check_rules": json.loads(batch_input(tenant, events_from(EXAMPLES / "okta" / "user_account_lock.json", tenant)).payload),
        "trigger_notifications": {"tenant_id": tenant, "batch_id": "package-test", "matches": []},
        "sweep": {"scheduled_time": "2026-12-06T08:00:00Z"},
    }
    results = {key: _run(stack, package, key, command, events[key]) for key, command in image_commands().items()}
    assert results["normalize"] == {"batchItemFailures": []}
    assert results["check_rules"]["match_count"] == 1 and results["check_rules"]["trigger_payload_exists"] is True
    assert results["trigger_notifications"]["delivered"] == 0 and results["trigger_notifications"]["tenant_id"] == tenant
    assert "started" in results["sweep"]
