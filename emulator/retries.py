"""A retried SDK call whose earlier attempt was answered 2xx gets that answer again.

Why: the Terraform AWS provider (Go) sometimes resets its connection to this emulator *after* the
whole 2xx answer has arrived (a capture on lo shows the answer delivered, then the client's RST)
and its SDK retries the call. A create that is not idempotent then fails: Lambda ``CreateFunction``
answers ``409 Function already exist``, which the provider retries for 5 minutes before the apply
fails; a second event source mapping is refused the same way (moto used to make it). Measured with
six applies at a time beside two busy loops on the 2 cores: 14 resets in 9 of 48 applies. A plain
Go client with the same transport settings was never reset (40,000 requests), so the cause lies
between the provider's SDK and this server, not in what is under test; the emulator makes up for it
rather than every caller.

How: every AWS SDK (Go, botocore) sends ``amz-sdk-invocation-id``, the same on every attempt of
one call, and ``amz-sdk-request: attempt=N``. A 2xx answer is kept (a bounded number of them, small
ones only) under the invocation id together with the request (method, path, query, operation) and
the caller's access key, so it goes back to nobody else; a later attempt of that call gets it, and
the request does not run again. Anything else passes untouched, so a retry after an error (5xx,
throttling, whatever the fault plan injects) runs again, as in AWS: this layer sits outside
``emulator.faults``, which sees and answers those retries itself.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from emulator import front_door
from emulator.front_door import StartResponse, WsgiApp
from emulator.requestlog import describe, say

# A retry comes soon after its attempt (the provider's: 0.1 s later, in the debug logs of the applies
# measured above); this keeps the last 2,048 calls' answers, in at most KEEP_BYTES of memory.
KEEP_ANSWERS = 2048
KEEP_BYTES = 16 * 1024 * 1024
KEEP_BODY_BYTES = 64 * 1024  # a create answers in well under that (CreateEventSourceMapping: 605 B); a larger answer is a read
_ATTEMPT = re.compile(r"attempt=(\d+)")


@dataclass(frozen=True)
class Answer:
    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Answers:
    """The 2xx answers of the latest calls, by call (thread-safe; bounded in number and bytes)."""

    def __init__(self, keep: int = KEEP_ANSWERS, keep_bytes: int = KEEP_BYTES) -> None:
        self._keep, self._keep_bytes, self._bytes = keep, keep_bytes, 0
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            return self._answers.get(key)

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            replaced = self._answers.pop(key, None)
            self._bytes += len(answer.body) - (len(replaced.body) if replaced else 0)
            self._answers[key] = answer
            while len(self._answers) > self._keep or self._bytes > self._keep_bytes:
                self._bytes -= len(self._answers.popitem(last=False)[1].body)


def attempt(environ: dict[str, Any]) -> int:
    found = _ATTEMPT.search(str(environ.get("HTTP_AMZ_SDK_REQUEST", "")))
    return int(found.group(1)) if found else 1


def _key(environ: dict[str, Any]) -> str:
    """The invocation id with what the call is and who makes it: an answer goes back only to the same
    request from the same credentials, whatever a caller puts in the header."""
    invocation = str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", ""))
    if not invocation:
        return ""
    parts = (invocation, environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
             environ.get("HTTP_X_AMZ_TARGET", ""), front_door.access_key(str(environ.get("HTTP_AUTHORIZATION", ""))))  # fmt: skip
    return "\n".join(str(part) for part in parts)


def answer(answers: Answers, app: WsgiApp, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    key = _key(environ)
    if not key:
        return app(environ, start_response)
    if (tried := attempt(environ)) > 1 and (kept := answers.get(key)) is not None:
        front_door.drain(environ)  # the server expects the body read; the call does not run again
        say(f"{describe(environ)}: attempt {tried} of invocation {environ['HTTP_AMZ_SDK_INVOCATION_ID']} answered "
            f"with an earlier attempt's {kept.status.split(' ', 1)[0]} (that answer was lost to the caller; not run again)")  # fmt: skip
        start_response(kept.status, list(kept.headers))
        return [kept.body]
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def keep_status(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return start_response(status, headers, exc_info)

    result = app(environ, keep_status)
    if not seen or not seen[-1][0].startswith("2"):
        return result
    try:
        body = b"".join(result)  # moto's answers are built whole; joined once to be kept
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if len(body) <= KEEP_BODY_BYTES:
        status, headers = seen[-1]
        answers.put(key, Answer(status, tuple(headers), body))
    return [body]


def install() -> None:
    """Put the replay in front of moto's front door (outermost: install after ``emulator.faults``)."""
    front_door.wrap(functools.partial(answer, Answers()))
