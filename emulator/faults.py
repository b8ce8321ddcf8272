"""Faults on demand for the embedded AWS: a plan says which requests fail, and how, by share.

The faults are injected where AWS's own failures show up, at the front door of each service: a
WSGI layer around moto answers a share of the matching requests with the error AWS would give, or
lets the request do its work and then loses the answer (the caller retries something that already
happened). Callers see exactly what they would see from AWS: their SDK retries, Step Functions'
``Retry``, the Lambda poller's redelivery. Kinds:

- ``lambda``: ``ServiceException`` (500) or ``TooManyRequestsException`` (429) before the function
  runs; ``Timeout``: the function runs to the end, then the invocation reports ``Sandbox.Timedout``
  (its effects happened; the caller thinks it failed). Each entry names functions by glob.
- ``dynamodb_throttle``: a share of writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
  TransactWriteItems) answered ``ProvisionedThroughputExceededException``.
- ``s3_errors``: a share of object reads and writes answered ``InternalError`` (500) or
  ``SlowDown`` (503).
- ``sqs_redeliver``: a share of messages a function processed that the Lambda poller does not delete
  but makes visible again (``emulator.sqs_esm``): SQS redelivers what was already done.
- ``lost_start_responses``: a share of ``StartExecution`` calls that start the execution and then
  answer 500, so the caller starts it again with the same name.

The plan is a JSON or YAML file (``python -m emulator serve --faults FILE``), re-read whenever it
changes: write ``{}`` to it (or delete it) and the faults stop. Every injected fault is appended to
a JSON-lines log (``--fault-log``), so a run can count what it survived.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from emulator import front_door
from emulator.front_door import StartResponse, WsgiApp

LAMBDA_ERRORS = ("ServiceException", "TooManyRequestsException", "Timeout")
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

# The soak's default: every kind, at shares that SDK retries, Step Functions' Retry and SQS
# redelivery must absorb without losing or doubling anything.
DEFAULT_PLAN: dict[str, Any] = {
    "seed": 1,
    "lambda": [
        {"functions": ["*"], "share": 0.05, "error": "ServiceException"},
        {"functions": ["*"], "share": 0.03, "error": "TooManyRequestsException"},
        # (not normalize: its batch would come back only after the queue's visibility timeout, minutes)
        {"functions": ["*-check-rules", "*-trigger-notifications"], "share": 0.05, "error": "Timeout"},
    ],
    "dynamodb_throttle": 0.05,
    "s3_errors": 0.1,
    "sqs_redeliver": 0.02,
    "lost_start_responses": 0.05,
}


@dataclass(frozen=True)
class LambdaFault:
    functions: tuple[str, ...]
    share: float
    error: str

    def applies(self, function: str) -> bool:
        return any(fnmatch.fnmatchcase(function, pattern) for pattern in self.functions)


@dataclass(frozen=True)
class Plan:
    seed: int = 0
    lambda_faults: tuple[LambdaFault, ...] = ()
    dynamodb_throttle: float = 0.0
    s3_errors: float = 0.0
    sqs_redeliver: float = 0.0
    lost_start_responses: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.lambda_faults) or any((self.dynamodb_throttle, self.s3_errors, self.sqs_redeliver, self.lost_start_responses))

    @classmethod
    def parse(cls, data: Any, where: str = "fault plan") -> Plan:
        """A plan from its JSON/YAML form; anything unknown or out of range is an error naming it."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
        known = {"seed", "lambda", "dynamodb_throttle", "s3_errors", "sqs_redeliver", "lost_start_responses"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        faults = []
        entries = data.get("lambda") or []
        if not isinstance(entries, list):
            raise ValueError(f"{where}: lambda must be a list of {{functions, share, error}}")
        for n, entry in enumerate(entries):
            here = f"{where}: lambda[{n}]"
            if not isinstance(entry, dict) or set(entry) - {"functions", "share", "error"}:
                raise ValueError(f"{here}: expected {{functions, share, error}}, got {entry!r:.200}")
            functions = entry.get("functions", ["*"])
            if isinstance(functions, str):
                functions = [functions]
            if not isinstance(functions, list) or not all(isinstance(f, str) and f for f in functions):
                raise ValueError(f"{here}: functions must be a list of function-name globs")
            error = entry.get("error")
            if error not in LAMBDA_ERRORS:
                raise ValueError(f"{here}: error must be one of {', '.join(LAMBDA_ERRORS)}, got {error!r}")
            faults.append(LambdaFault(tuple(functions), _share(entry.get("share"), f"{here}.share"), error))
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"{where}: seed must be an integer")
        return cls(
            seed=seed,
            lambda_faults=tuple(faults),
            **{key: _share(data.get(key, 0.0), f"{where}: {key}") for key in sorted(known - {"seed", "lambda"})},
        )

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls.parse_text(path.read_text(encoding="utf-8"), path)

    @classmethod
    def parse_text(cls, text: str, path: Path) -> Plan:
        try:
            data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ValueError(f"fault plan {path}: not JSON or YAML: {exc}") from exc
        return cls.parse(data, f"fault plan {path}")


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where} must be a share between 0 and 1, got {value!r}")
    return float(value)


@dataclass
class Injector:
    """The current plan (re-read when its file changes), its dice, and the log of what it did."""

    plan_file: Path | None = None
    log_file: Path | None = None
    plan: Plan = field(default_factory=Plan)
    _text: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=random.Random)

    def reload(self) -> None:
        """Read the plan file; what it says is in force from now on, unless it is broken."""
        if self.plan_file is None:
            return
        try:
            text: str | None = self.plan_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        with self._lock:
            if text == self._text:
                return
            self._text = text
            try:
                plan = Plan.parse_text(text, self.plan_file) if text is not None else Plan()
            except ValueError as exc:
                # A half-written or broken plan keeps the previous one in force, said loudly.
                print(f"emulator.faults: {exc}; keeping the previous plan", flush=True)
                return
            if plan.seed != self.plan.seed or not self.plan.active:
                self._random.seed(plan.seed)
            self.plan = plan

    def watch(self) -> None:
        """Read the plan file four times a second, for ever. Watched rather than read as requests
        come: a plan written is in force within a quarter of a second even when nothing is asked of
        the emulator meanwhile (the next plan written may be a broken one, which keeps this one)."""
        while True:
            self.reload()
            time.sleep(0.25)

    def roll(self, share: float) -> bool:
        if share <= 0.0:
            return False
        with self._lock:
            return self._random.random() < share

    def choice(self, options: tuple[str, ...]) -> str:
        with self._lock:
            return self._random.choice(options)

    def record(self, kind: str, **detail: Any) -> None:
        if self.log_file is None:
            return
        line = json.dumps({"at": time.time(), "kind": kind, **detail}, separators=(",", ":"))
        with self._lock, self.log_file.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


_injector = Injector()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The faults a run injected (``--fault-log``)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the front door ------------------------------------------------------------------------------

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


@dataclass(frozen=True)
class Request:
    service: str  # the SigV4 signing name: lambda, dynamodb, s3, states, sqs...
    action: str  # the operation (X-Amz-Target) or, for S3, the HTTP method
    target: str  # the function name (Lambda), the object path (S3), else ""

    @classmethod
    def of(cls, environ: dict[str, Any]) -> Request:
        service = front_door.service(str(environ.get("HTTP_AUTHORIZATION", "")))
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        action = target.rsplit(".", 1)[-1] if target else ""
        path = str(environ.get("PATH_INFO", ""))
        if service == "lambda" and (invoke := _INVOKE_PATH.match(path)):
            name = unquote(invoke.group(1)).split(":")
            # a name, a partial ARN or a full ARN (arn:aws:lambda:region:account:function:NAME[:qualifier])
            function = name[6] if len(name) >= 7 else name[0]
            return cls(service, "Invoke", function)
        if service == "s3":
            return cls(service, str(environ.get("REQUEST_METHOD", "")), path)
        return cls(service, action, "")


def _response(start_response: StartResponse, status: str, headers: dict[str, str], body: dict[str, Any] | str) -> list[bytes]:
    data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    start_response(status, [*headers.items(), ("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]


def _run_and_discard(app: WsgiApp, environ: dict[str, Any]) -> str:
    """Let the request do its work; return its status line (the answer itself is lost)."""
    seen: list[str] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        seen.append(status)
        return lambda _data: None

    body = app(environ, capture)
    try:
        for _chunk in body:
            pass
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return seen[0] if seen else "500 INTERNAL SERVER ERROR"


def _is_s3_object(request: Request) -> bool:
    # Path style (/bucket/key...): object reads and writes, not bucket operations.
    return request.action in ("GET", "PUT", "HEAD") and request.target.strip("/").count("/") >= 1


def _inject(app: WsgiApp, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The fault layer: the fault's answer to this request, or the app's."""
    plan = _injector.plan
    if plan.active and (injected := _fault(app, environ, start_response, plan, Request.of(environ))) is not None:
        return injected
    return app(environ, start_response)


def _fault(app: WsgiApp, environ: dict[str, Any], start_response: StartResponse, plan: Plan, request: Request) -> Iterable[bytes] | None:
    injector = _injector
    if request.service == "lambda" and request.action == "Invoke":
        if environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse") != "RequestResponse":
            return None
        for fault in plan.lambda_faults:
            if not fault.applies(request.target) or not injector.roll(fault.share):
                continue
            injector.record("lambda", error=fault.error, function=request.target)
            if fault.error != "Timeout":
                front_door.drain(environ)
            if fault.error == "ServiceException":
                body = {"Type": "Service", "message": "An error occurred and the request cannot be processed."}
                return _response(start_response, "500 Internal Server Error",
                                 {"Content-Type": "application/json", "x-amzn-ErrorType": "ServiceException"}, body)  # fmt: skip
            if fault.error == "TooManyRequestsException":
                body = {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User", "message": "Rate Exceeded."}
                return _response(start_response, "429 Too Many Requests",
                                 {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"}, body)  # fmt: skip
            _run_and_discard(app, environ)  # Timeout: the work is done, the answer says it was not
            body = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": "Task timed out (injected by the fault plan after the handler returned)",
            }
            return _response(start_response, "200 OK", {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled"}, body)
        return None
    if request.service == "dynamodb" and request.action in DYNAMODB_WRITES and injector.roll(plan.dynamodb_throttle):
        injector.record("dynamodb_throttle", action=request.action)
        front_door.drain(environ)
        body = {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
        return _response(start_response, "400 Bad Request", {"Content-Type": "application/x-amz-json-1.0"}, body)
    if request.service == "s3" and _is_s3_object(request) and injector.roll(plan.s3_errors):
        code = injector.choice(("InternalError", "SlowDown"))
        injector.record("s3_error", error=code, method=request.action)
        front_door.drain(environ)
        status = "500 Internal Server Error" if code == "InternalError" else "503 Slow Down"
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>injected by the fault plan</Message></Error>'
        return _response(start_response, status, {"Content-Type": "application/xml"}, xml)
    if request.service == "states" and request.action == "StartExecution" and injector.roll(plan.lost_start_responses):
        status = _run_and_discard(app, environ)
        injector.record("lost_start_response", answered=status)
        body = {"__type": "InternalFailure", "message": "injected by the fault plan: the execution may have started"}
        return _response(start_response, "500 Internal Server Error", {"Content-Type": "application/x-amz-json-1.0"}, body)
    return None


def install(plan_file: Path | None, log_file: Path | None) -> None:
    """Put the fault layer in front of every service of this moto server."""
    _injector.plan_file = plan_file
    _injector.log_file = log_file
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    if plan_file is not None:
        _injector.reload()  # in force from the first request, not from the watcher's first look
        threading.Thread(target=_injector.watch, name="fault-plan", daemon=True).start()
    front_door.wrap(_inject)


def redeliver(message_ids: Iterable[str]) -> Iterator[str]:
    """The processed messages the Lambda poller should leave for SQS to deliver again."""
    plan = _injector.plan
    for message_id in message_ids:
        if _injector.roll(plan.sqs_redeliver):
            _injector.record("sqs_redeliver", message_id=message_id)
            yield message_id
