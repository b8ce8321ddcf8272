"""The emulator's own account of the requests worth a line in its log (``emulator.log``).

One line per request would drown the log (a soak sends hundreds of thousands), so only these:

- Lambda control-plane writes (create, update, delete of functions and event source mappings): a
  ``terraform apply`` of the local environment makes five, and a failed apply is read against them;
- every answer of 500 or above that the fault plan did not inject (moto failing is our bug);
- every request slower than ``SLOW_SECONDS``;
- every connection the client reset while it was being answered, which werkzeug ignores silently.
  The Terraform provider now and then resets one even after the whole answer arrived, then retries
  the call; ``emulator.retries`` answers such a retry, and says so on a line of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from emulator import front_door
from emulator.front_door import StartResponse, WsgiApp

SLOW_SECONDS = 5.0
_LAMBDA_WRITE = re.compile(r"^/20\d\d-\d\d-\d\d/(functions|event-source-mappings)(/|$)")
_INVOKE = re.compile(r"/invocations$")


def _worth_a_line(method: str, path: str, status: int, seconds: float) -> bool:
    if seconds >= SLOW_SECONDS or status >= 500:
        return True
    return method in ("POST", "PUT", "DELETE", "PATCH") and bool(_LAMBDA_WRITE.match(path)) and not _INVOKE.search(path)


def describe(environ: dict[str, Any]) -> str:
    """``METHOD PATH`` and, for who asked what: the signing service, the operation (JSON protocols
    name it in a header; query protocols in the body, unread here) and the caller's SDK."""
    signed_for = front_door.service(str(environ.get("HTTP_AUTHORIZATION", "")))
    target = str(environ.get("HTTP_X_AMZ_TARGET", "")).rsplit(".", 1)[-1]
    agent = str(environ.get("HTTP_USER_AGENT", "")).split(" ", 1)[0]
    detail = " ".join(part for part in (signed_for, target, agent) if part)
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')} ({detail or 'unsigned'})"


def say(line: str) -> None:
    now = time.time()
    print(f"emulator.requests: {time.strftime('%H:%M:%S', time.localtime(now))}.{int(now % 1 * 1000):03d} {line}", flush=True)


def _logged(app: WsgiApp, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    started = time.monotonic()
    seen: list[int] = []

    def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(int(status.split(None, 1)[0]))
        return start_response(status, headers, exc_info)

    try:
        return app(environ, respond)
    finally:
        method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", ""))
        status, seconds = (seen[-1] if seen else 0), time.monotonic() - started
        if _worth_a_line(method, path, status, seconds):
            say(f"{describe(environ)} -> {status or 'raised (answered 500)'} in {seconds:.2f}s, peer port {environ.get('REMOTE_PORT')}")


def install() -> None:
    """Put the log in front of moto's front door, and hear of the connections its server drops."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    def dropped(self: MotoRequestHandler, error: BaseException, environ: dict[str, Any] | None = None) -> None:
        where = f"{describe(environ)}, peer port {environ.get('REMOTE_PORT')}" if environ else "(before the request was read)"
        say(f"the client dropped the connection during {where}: {type(error).__name__}: {error}")

    front_door.wrap(_logged)
    MotoRequestHandler.connection_dropped = dropped  # type: ignore[method-assign,assignment]
