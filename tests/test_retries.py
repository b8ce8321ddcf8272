"""emulator.retries: a retried SDK call whose earlier attempt was answered 2xx gets that answer again
(the Terraform provider sometimes resets a connection after the whole answer arrived, then retries)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from emulator import retries
from tests.helpers import FIXTURE_ROLE, fixture_function, sigv4


class _App:
    """A WSGI app that counts its runs and answers what it is told to."""

    def __init__(self, status: str = "201 Created", body: bytes = b'{"made": 1}') -> None:
        self.runs, self.status, self.body = 0, status, body

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.runs += 1
        start_response(self.status, [("Content-Type", "application/json")])
        return [self.body]


def _call(app: _App, answers: retries.Answers, invocation: str | None, attempt: int, **other: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_LENGTH": "0", "HTTP_X_AMZ_TARGET": "AmazonSQS.CreateQueue",
                               "HTTP_AUTHORIZATION": sigv4("sqs")}  # fmt: skip
    if invocation is not None:
        environ |= {"HTTP_AMZ_SDK_INVOCATION_ID": invocation, "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=25"}
    environ |= other
    seen: list[str] = []
    body = b"".join(retries.answer(answers, app, environ, lambda status, headers, exc_info=None: seen.append(status)))
    return seen[-1], body


def test_a_retry_of_an_answered_call_gets_the_answer_and_does_not_run_again():
    app, answers = _App(), retries.Answers()
    first = _call(app, answers, "inv-1", 1)
    assert _call(app, answers, "inv-1", 2) == first == ("201 Created", b'{"made": 1}')
    assert app.runs == 1
    _call(app, answers, "inv-2", 1)  # another call (a new invocation id) runs
    assert app.runs == 2


@pytest.mark.parametrize("status", ["500 Internal Server Error", "429 Too Many Requests", "409 Conflict"])
def test_a_retry_after_an_error_runs_again(status):
    app, answers = _App(status=status), retries.Answers()
    _call(app, answers, "inv-1", 1)
    app.status = "201 Created"
    assert _call(app, answers, "inv-1", 2)[0] == "201 Created"
    assert app.runs == 2


@pytest.mark.parametrize("other", [{"PATH_INFO": "/other"}, {"HTTP_X_AMZ_TARGET": "AmazonSQS.DeleteQueue"},
                                   {"HTTP_AUTHORIZATION": sigv4("sqs", "someone-else")}])  # fmt: skip
def test_an_answer_goes_back_only_to_the_same_request_from_the_same_caller(other):
    app, answers = _App(), retries.Answers()
    _call(app, answers, "inv-1", 1)
    _call(app, answers, "inv-1", 2, **other)  # the same invocation id on another request or caller: runs
    assert app.runs == 2


def test_calls_without_an_sdk_invocation_id_and_large_answers_are_not_kept():
    app, answers = _App(), retries.Answers()
    _call(app, answers, None, 1)
    _call(app, answers, None, 2)
    assert app.runs == 2
    big = _App(body=b"x" * (retries.KEEP_BODY_BYTES + 1))
    _call(big, answers, "inv-big", 1)
    assert _call(big, answers, "inv-big", 2)[1] == big.body  # ran again: a read that large is safe to repeat
    assert big.runs == 2


@pytest.mark.parametrize("bounds", [{"keep": 2}, {"keep_bytes": 2 * len(_App().body)}])
def test_only_the_latest_answers_are_kept(bounds):
    app, answers = _App(), retries.Answers(**bounds)
    for invocation in ("a", "b", "c"):
        _call(app, answers, invocation, 1)
    _call(app, answers, "a", 2)  # forgotten: runs again
    _call(app, answers, "c", 2)  # kept
    assert app.runs == 4


def _create_function(env: Any, name: str, invocation: str, attempt: int) -> tuple[int, dict[str, Any]]:
    """CreateFunction over HTTP as an SDK attempt would send it (moto does not check signatures)."""
    body = json.dumps({"FunctionName": name, "Role": FIXTURE_ROLE, "PackageType": "Image",
                       "Code": {"ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/test@sha256:{'a' * 64}"}})  # fmt: skip
    request = urllib.request.Request(f"{env.endpoint}/2015-03-31/functions", data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "amz-sdk-invocation-id": invocation, "amz-sdk-request": f"attempt={attempt}; max=3",
        "Authorization": sigv4("lambda"),
    })  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.integration
def test_a_create_retried_after_its_answer_was_lost_is_answered_not_refused(emulator):
    fixture_function(emulator, "tests.fixtures.lambdas.echo")  # the role the function needs
    name, invocation = f"retried-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    status, created = _create_function(emulator, name, invocation, 1)
    assert status == 201
    # The provider's SDK retries the same invocation when the answer did not reach it: AWS would
    # have had no reason to lose it, so the retry gets it rather than "409 Function already exist".
    assert _create_function(emulator, name, invocation, 2) == (201, created)
    status, refused = _create_function(emulator, name, str(uuid.uuid4()), 1)  # a second create really is one
    assert status == 409 and "already exist" in refused["message"]
    log = (emulator.workdir / "emulator.log").read_text()
    assert f"attempt 2 of invocation {invocation} answered with an earlier attempt's 201" in log
