"""Lambda invocations for the embedded AWS: run our handler, named by the image command.

moto without Docker cannot run a container image. In AWS the image's CMD (Terraform's
``image_config.command``, e.g. ``handlers.check_rules.handler``) tells the Lambda runtime which
handler to call; here we do the same in a worker process per execution environment
(``emulator.lambda_worker``), with the function's environment variables, a Lambda context, its
timeout, and its logs written to the function's CloudWatch log group. Handler exceptions come back
as ``FunctionError`` with ``errorType`` so that ASL ``Retry``/``Catch`` on error names behave as in
AWS.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import LambdaFunction

MAX_ENVIRONMENTS_PER_FUNCTION = 8


@dataclass
class RuntimeSettings:
    endpoint_url: str
    code_root: str
    region: str = "us-east-1"
    python: str = sys.executable


@dataclass
class _Environment:
    """One warm execution environment (a worker process) of one function version."""

    key: tuple[str, str, str]
    proc: subprocess.Popen[str]
    result_in: Any
    logs: "queue.Queue[str]" = field(default_factory=queue.Queue)
    busy: bool = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()


class LambdaRuntime:
    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._lock = threading.Condition()
        self._envs: dict[str, list[_Environment]] = {}

    # -- environments ---------------------------------------------------------------------------

    def _handler_ref(self, fn: LambdaFunction) -> str:
        if fn.package_type == "Image":
            command = fn.image_config.cmd or []
            if not command:
                raise ValueError(f"function {fn.function_name} has no image_config.command")
            return str(command[0])
        return str(fn.handler)

    def _spawn(self, fn: LambdaFunction, key: tuple[str, str, str]) -> _Environment:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": self.settings.code_root,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # What the Lambda service sets in every execution environment.
            "_HANDLER": key[2],
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            # Credentials of the function's role; the emulator accepts any.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            # Every SDK call of the handler goes to the embedded AWS.
            "AWS_ENDPOINT_URL": self.settings.endpoint_url,
            # The code's directory, as Lambda sets it (/var/task there); the X-Ray SDK reads it to
            # know it runs in Lambda (outside, it builds sampling clients: ~100 ms per cold start).
            "LAMBDA_TASK_ROOT": str(self.settings.code_root),
            # No X-Ray daemon here: Powertools' Tracer stays off (handlers/tracing.py), patches nothing
            # and sends no segment.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        result_r, result_w = os.pipe()
        proc = subprocess.Popen(
            [self.settings.python, "-m", "emulator.lambda_worker", str(result_w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(result_w,),
            env=env,
            cwd=self.settings.code_root,
            text=True,
            encoding="utf-8",
        )
        os.close(result_w)
        environment = _Environment(key=key, proc=proc, result_in=os.fdopen(result_r, "r", encoding="utf-8"))
        threading.Thread(target=self._pump_logs, args=(environment,), daemon=True).start()
        return environment

    @staticmethod
    def _pump_logs(environment: _Environment) -> None:
        assert environment.proc.stdout is not None
        for line in environment.proc.stdout:
            environment.logs.put(line.rstrip("\n"))
        environment.logs.put("\x00EOF")

    def _acquire(self, fn: LambdaFunction) -> _Environment:
        handler = self._handler_ref(fn)
        # A code or configuration change gives new environments, as a new function version does.
        env_sig = json.dumps(fn.environment_vars or {}, sort_keys=True)
        key = (fn.code_sha_256 or "", env_sig, handler)
        with self._lock:
            while True:
                envs = self._envs.setdefault(fn.function_arn, [])
                for stale in [e for e in envs if (e.key != key or not e.alive()) and not e.busy]:
                    envs.remove(stale)
                    stale.kill()
                for e in envs:
                    if not e.busy and e.key == key:
                        e.busy = True
                        return e
                if len(envs) < MAX_ENVIRONMENTS_PER_FUNCTION:
                    e = self._spawn(fn, key)
                    e.busy = True
                    envs.append(e)
                    return e
                self._lock.wait(timeout=1.0)

    def _release(self, fn: LambdaFunction, environment: _Environment, broken: bool) -> None:
        with self._lock:
            environment.busy = False
            if broken:
                envs = self._envs.get(fn.function_arn, [])
                if environment in envs:
                    envs.remove(environment)
                environment.kill()
            self._lock.notify_all()

    def shutdown(self) -> None:
        with self._lock:
            for envs in self._envs.values():
                for e in envs:
                    e.kill()
            self._envs.clear()

    # -- invocation -----------------------------------------------------------------------------

    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[Any, str | None, str]:
        """Run one invocation. Returns (payload, function_error or None, log text)."""
        request_id = str(uuid.uuid4())
        timeout = float(fn.timeout or 3)
        try:
            environment = self._acquire(fn)
        except ValueError as exc:
            return _err("Runtime.InvalidEntrypoint", str(exc)), "Unhandled", str(exc)
        request = {
            "event": event,
            "context": {
                "function_name": fn.function_name,
                "function_version": str(fn.version),
                "invoked_function_arn": fn.function_arn,
                "memory_limit_in_mb": fn.memory_size,
                "aws_request_id": request_id,
                "log_group_name": fn.logs_group_name,
                "deadline": time.time() + timeout,
            },
        }
        broken = False
        result: dict[str, Any] | None = None
        try:
            assert environment.proc.stdin is not None
            environment.proc.stdin.write(json.dumps(request) + "\n")
            environment.proc.stdin.flush()
            result = _read_line_with_timeout(environment.result_in, timeout)
        except (BrokenPipeError, OSError):
            result = None
        logs = [f"START RequestId: {request_id} Version: {fn.version}"]
        if result is None:
            broken = True
            timed_out = environment.alive()  # still running its handler: the deadline passed
            environment.kill()
            logs.extend(_drain(environment.logs, until=None))
            if timed_out:
                message = f"Task timed out after {timeout:.2f} seconds"
                payload, error = _err("Sandbox.Timedout", message), "Unhandled"
            else:
                message = f"Runtime exited with error: exit status {environment.proc.returncode}"
                payload, error = _err("Runtime.ExitError", message), "Unhandled"
            logs.append(message)
        else:
            logs.extend(_drain(environment.logs, until=f"END RequestId: {request_id}"))
            if "error" in result:
                payload, error = result["error"], "Unhandled"
            else:
                payload, error = result["payload"], None
        logs.append(f"END RequestId: {request_id}")
        self._release(fn, environment, broken)
        return payload, error, "\n".join(logs)


def _err(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _read_line_with_timeout(stream: Any, timeout: float) -> dict[str, Any] | None:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        return None
    result: dict[str, Any] = json.loads(box[0])
    return result


def _drain(logs: "queue.Queue[str]", until: str | None) -> list[str]:
    lines: list[str] = []
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            line = logs.get(timeout=0.05 if until is None else 1.0)
        except queue.Empty:
            if until is None:
                break
            continue
        if line == "\x00EOF" or line == until:
            break
        lines.append(line)
    return lines


_runtime: LambdaRuntime | None = None


def install(settings: RuntimeSettings) -> LambdaRuntime:
    """Route every moto Lambda invocation through our runtime."""
    global _runtime
    _runtime = LambdaRuntime(settings)

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> bytes | str:
        event = json.loads(body) if body else {}
        assert _runtime is not None
        payload, error, logs = _runtime.invoke(self, event)
        self.logs_backend.ensure_log_group(self.logs_group_name)
        self.save_logs(logs)
        if error:
            response_headers["x-amz-function-error"] = error
        encoded = json.dumps(payload).encode("utf-8")
        if request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse":
            if request_headers.get("x-amz-log-type") == "Tail":
                tail = logs.encode("utf-8")[-4096:]
                response_headers["x-amz-log-result"] = base64.b64encode(tail).decode("ascii")
        return encoded

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    return _runtime
