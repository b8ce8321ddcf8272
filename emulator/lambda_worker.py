"""One Lambda execution environment: a long-lived process that runs one function's handler.

The emulator starts one of these per concurrent invocation slot of a function, with that function's
environment variables, exactly like an AWS Lambda execution environment: module state (cached
clients, cached rules) survives between warm invocations, and environments never share memory.

Protocol (the parent is ``emulator.lambda_runtime``):
- requests arrive as one JSON line each on stdin: ``{"event": ..., "context": {...}}``;
- the handler's stdout/stderr are the function's logs; after each invocation the worker prints
  ``END RequestId: <id>`` so the parent knows where the invocation's logs stop;
- the result is one JSON line on file descriptor ``RESULT_FD`` (given as argv[1]):
  ``{"payload": ...}`` or ``{"error": {"errorType", "errorMessage", "stackTrace"}}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, Callable


class LambdaContext:
    """The attributes AWS passes as the handler's ``context`` (Powertools reads these)."""

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.function_name = ctx["function_name"]
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx["invoked_function_arn"]
        self.memory_limit_in_mb = int(ctx.get("memory_limit_in_mb", 128))
        self.aws_request_id = ctx["aws_request_id"]
        self.log_group_name = ctx.get("log_group_name", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.identity = None
        self.client_context = None
        self._deadline = float(ctx["deadline"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"error": {"errorType": exc_type, "errorMessage": message, "stackTrace": stack or []}}


def _load_handler(ref: str) -> Callable[..., Any]:
    module_name, _, func_name = ref.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {ref!r} is not of the form 'package.module.function'")
    module = importlib.import_module(module_name)
    handler: Callable[..., Any] = getattr(module, func_name)
    return handler


def main() -> None:
    result_out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    handler_ref = os.environ["_HANDLER"]
    handler: Callable[..., Any] | None = None
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["context"])
        try:
            if handler is None:
                try:
                    handler = _load_handler(handler_ref)
                except Exception as exc:  # the image's CMD names something that does not import
                    response = _error(
                        "Runtime.ImportModuleError",
                        f"Unable to import module '{handler_ref}': {exc}",
                        traceback.format_exception(exc),
                    )
                    raise _Done(response) from None
            payload = handler(request["event"], context)
            try:
                json.dumps(payload)
            except (TypeError, ValueError) as exc:
                raise _Done(_error("Runtime.MarshalError", f"Unable to marshal response: {exc}")) from None
            response = {"payload": payload}
        except _Done as done:
            response = done.response
        except Exception as exc:  # an unhandled handler error, reported like the Lambda runtime does
            traceback.print_exc()
            response = _error(type(exc).__name__, str(exc), traceback.format_tb(exc.__traceback__))
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"END RequestId: {context.aws_request_id}", flush=True)
        result_out.write(json.dumps(response) + "\n")


class _Done(Exception):
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response


if __name__ == "__main__":
    main()
