"""A real HTTP receiver for coaching notifications, on 127.0.0.1.

Every POST is appended to a JSON-lines record file and answered 204, so the demo and the tests can
check what really arrived over the wire. A path starting with ``/status/<code>/`` answers with that
status instead, to exercise delivery failures (per tenant: each tenant has its own webhook path);
one starting with ``/fail-first/<n>/`` answers 500 to the first n requests on that path, then 204
(a receiver that recovers).

**Channel APIs.** A path holding ``/slack-api/`` answers as Slack's Web API does (200 with a JSON
body, ``emulator.channel_apis``): ``users.lookupByEmail`` finds every address but those whose local
part starts with ``unknown`` (``users_not_found``), ``chat.postMessage`` answers ``ok`` with a
``ts``; both answer ``not_authed`` without a bearer token. A path holding ``/slack-hook/`` answers
200 ``ok`` (a Slack incoming webhook), ``/teams/`` 202 (a Teams workflow), ``/learning/`` 201 with
the assignment's id. The status prefixes above still apply to them.

**Fault plans.** For soak tests a receiver can misbehave on purpose, following a JSON plan
(``FaultPlan.from_json``; ``python -m emulator webhook --faults FILE`` or ``--faults-json '...'``)::

    {"seed": 7, "error_share": 0.05, "error_status": 500, "hang_share": 0.01, "hang_seconds": 30,
     "drip_share": 0.01, "drip_seconds": 20, "redirect_share": 0.01, "down": [{"after": 10, "for": 5}]}

Every key is optional (defaults: seed 0, shares 0, error_status 500, hang_seconds 30, drip_seconds
20, no down windows); an unknown key, a share outside 0..1, shares adding up to more than 1, an
error_status outside 400..599 or a negative time is a ``FaultPlanError`` naming the key.

- Each POST draws one number from ``random.Random(seed)`` (one generator per receiver, drawn under a
  lock), so the faults depend only on the seed and the order requests arrive in. The shares are
  consecutive slices of [0, 1): error, then hang, drip, redirect; a draw past them all is no fault.
- ``error``: answers ``error_status``.
- ``hang``: reads the request, then answers nothing for ``hang_seconds`` and closes the connection:
  only the client's own deadline ends the exchange sooner.
- ``drip``: sends the status line and headers of the normal answer one byte at a time, spread evenly
  over ``drip_seconds``: every byte keeps a per-read socket timeout from firing.
- ``redirect``: answers 302 with ``Location: /redirected<path>`` on this receiver. Requests under
  ``/redirected/`` (GET too: urllib and requests follow a 302 with a GET) are recorded, answered 204
  and draw nothing, so a client that follows shows up in the record without shifting the faults.
- ``down``: windows in seconds after the receiver started listening. During a window the listening
  socket is closed, so the kernel refuses new connections (the client sees "connection refused";
  connections queued but not yet accepted are reset); requests already accepted carry on. The same
  port is bound again when the window ends. Overlapping windows merge.

The ``/status/<code>/`` paths keep working with a plan: a request there that draws no fault answers
with the path's status, one that draws a fault gets the fault.

**The record.** One JSON line per request that reached the handler: ``received_at`` (epoch seconds),
``method``, ``path``, ``status`` (the status answered, dripped or attempted; null for a hang),
``headers`` (names lowercased), ``body``, ``notification_id`` (the ``X-Coachflow-Notification-Id``
header, or null), ``fault`` (``"error"``, ``"hang"``, ``"drip"``, ``"redirect"`` or null),
``answered`` (whether the whole answer was written: false for a hang, and for a drip the client hung
up on) and ``sequence`` (the request's draw, 1 for the first; null without a plan and under
``/redirected/``). A line is written before the answer is sent, so a client that got its answer
finds its line; a drip's line is written when the drip is over, as it says whether the client stayed.
``summary`` reconciles a record. A receiver with a plan, stopped with SIGTERM, cuts its hangs and
drips short and records them before it exits.
"""

from __future__ import annotations

import json
import math
import random
import signal
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal, TypedDict

from emulator import channel_apis

Fault = Literal["error", "hang", "drip", "redirect"]
FAULTS: Final[tuple[Fault, ...]] = ("error", "hang", "drip", "redirect")
REDIRECT_PREFIX: Final = "/redirected"
NOTIFICATION_ID_HEADER: Final = "X-Coachflow-Notification-Id"

_SHARE_KEYS: Final = ("error_share", "hang_share", "drip_share", "redirect_share")  # in the order of their slices
_PLAN_KEYS: Final = frozenset({"seed", *_SHARE_KEYS, "error_status", "hang_seconds", "drip_seconds", "down"})
_WINDOW_KEYS: Final = frozenset({"after", "for"})


class FaultPlanError(ValueError):
    """A fault plan that is not valid; the message names the offending key."""


@dataclass(frozen=True)
class DownWindow:
    after: float  # seconds after the receiver started listening
    duration: float  # the plan's "for", in seconds


@dataclass(frozen=True)
class FaultPlan:
    """How a receiver misbehaves; see the module's documentation. The default plan does nothing."""

    seed: int = 0
    error_share: float = 0.0
    error_status: int = 500
    hang_share: float = 0.0
    hang_seconds: float = 30.0
    drip_share: float = 0.0
    drip_seconds: float = 20.0
    redirect_share: float = 0.0
    down: tuple[DownWindow, ...] = ()

    @classmethod
    def from_json(cls, text: str) -> FaultPlan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultPlanError(f"fault plan is not JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> FaultPlan:
        if not isinstance(data, dict):
            raise FaultPlanError(f"fault plan must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - _PLAN_KEYS)
        if unknown:
            known = ", ".join(sorted(_PLAN_KEYS))
            raise FaultPlanError(f"fault plan: unknown key {', '.join(map(repr, unknown))} (known: {known})")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise FaultPlanError(f"fault plan: seed must be an integer, not {seed!r}")
        shares = {key: _number(data, key, 0.0, "a number from 0 to 1", upper=1.0) for key in _SHARE_KEYS}
        if sum(shares.values()) > 1:
            raise FaultPlanError(f"fault plan: the shares add up to {sum(shares.values()):g}, more than 1 ({' + '.join(_SHARE_KEYS)})")
        status = data.get("error_status", 500)
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise FaultPlanError(f"fault plan: error_status must be an HTTP error status from 400 to 599, not {status!r}")
        return cls(
            seed=seed,
            error_share=shares["error_share"],
            error_status=status,
            hang_share=shares["hang_share"],
            hang_seconds=_number(data, "hang_seconds", 30.0, "a number of seconds, 0 or more"),
            drip_share=shares["drip_share"],
            drip_seconds=_number(data, "drip_seconds", 20.0, "a number of seconds, 0 or more"),
            redirect_share=shares["redirect_share"],
            down=_windows(data.get("down", [])),
        )

    def choose(self, draw: float) -> Fault | None:
        """The fault of a request whose draw (uniform in [0, 1)) is ``draw``."""
        edge = 0.0
        for fault, share in zip(FAULTS, (self.error_share, self.hang_share, self.drip_share, self.redirect_share)):
            edge += share
            if draw < edge:
                return fault
        return None

    def down_spans(self) -> list[tuple[float, float]]:
        """The down windows as (start, end) seconds after the start, in order, overlapping ones merged."""
        spans: list[tuple[float, float]] = []
        for window in sorted(self.down, key=lambda w: w.after):
            start, end = window.after, window.after + window.duration
            if end <= start:
                continue  # "for": 0 is a window of no time
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        return spans


def _number(data: dict[str, Any], key: str, default: float, what: str, upper: float = math.inf, where: str = "") -> float:
    value = data.get(key, default)
    # bool is an int to Python, but "true" is no share; NaN and infinity compare false either way.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= upper:
        raise FaultPlanError(f"fault plan: {where}{key} must be {what}, not {value!r}")
    return float(value)


def _windows(value: object) -> tuple[DownWindow, ...]:
    if not isinstance(value, list):
        raise FaultPlanError(f'fault plan: down must be a list of {{"after": seconds, "for": seconds}}, not {value!r}')
    windows = []
    for index, item in enumerate(value):
        where = f"down[{index}]."
        if not isinstance(item, dict):
            raise FaultPlanError(f'fault plan: down[{index}] must be {{"after": seconds, "for": seconds}}, not {item!r}')
        unknown = sorted(set(item) - _WINDOW_KEYS)
        if unknown:
            raise FaultPlanError(f"fault plan: down[{index}]: unknown key {', '.join(map(repr, unknown))} (known: 'after', 'for')")
        missing = sorted(_WINDOW_KEYS - set(item))
        if missing:
            raise FaultPlanError(f"fault plan: {where}{missing[0]} is missing")
        what = "a number of seconds, 0 or more"
        windows.append(DownWindow(_number(item, "after", 0.0, what, where=where), _number(item, "for", 0.0, what, where=where)))
    return tuple(windows)


class _Faults:
    """What the request threads of a receiver with a plan share."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.stopping = threading.Event()  # set when the receiver stops: hangs and drips end at once
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._count = 0
        self._busy = 0
        self._idle = threading.Condition()

    def draw(self) -> tuple[int, Fault | None]:
        # Counting and drawing under one lock: the n-th request gets the n-th number of the sequence.
        with self._lock:
            self._count += 1
            return self._count, self.plan.choose(self._random.random())

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)


class _Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 overflows under a soak's concurrent deliveries, and the kernel then
    # resets connections: faults nobody planned, that the record would not show.
    request_queue_size = 128


class _FaultyServer(_Server):
    """A receiver whose serving loop also keeps the plan's down windows."""

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], faults: _Faults) -> None:
        self.faults = faults  # before binding: a failed bind calls server_close, which uses it
        self._stopped = threading.Event()
        super().__init__(("127.0.0.1", port), handler)
        self.started = time.monotonic()  # down windows count from here, once the socket listens

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        # socketserver's own loop cannot let go of its socket and take another: this one serves in
        # phases, up until the next window, down (no socket at all) until its end, up again.
        try:
            for start, end in self.faults.plan.down_spans():
                if not self._serve_until(self.started + start, poll_interval):
                    return
                self.socket.close()  # no listener on the port: the kernel refuses connections
                if self.faults.stopping.wait(max(0.0, self.started + end - time.monotonic())):
                    return
                self._listen_again()
            self._serve_until(math.inf, poll_interval)
        finally:
            self._stopped.set()

    def _serve_until(self, until: float, poll_interval: float) -> bool:
        """Serve until the monotonic time ``until``; False when the receiver is stopping instead."""
        while not self.faults.stopping.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return True
            self.timeout = min(poll_interval, left)  # handle_request waits at most this long for a connection
            self.handle_request()
        return False

    def _listen_again(self) -> None:
        self.socket = socket.socket(self.address_family, self.socket_type)
        try:
            # TCPServer's bind (SO_REUSEADDR, the address and port bound first): HTTPServer's would
            # also look the host name up again, for nothing.
            socketserver.TCPServer.server_bind(self)
            self.server_activate()
        except OSError as exc:
            self.socket.close()
            raise OSError(f"webhook receiver could not listen on {self.server_address} again after a down window: {exc}") from exc

    def shutdown(self) -> None:
        self.faults.stopping.set()
        self._stopped.wait()

    def server_close(self) -> None:
        self.faults.stopping.set()
        super().server_close()
        self.faults.wait_idle(timeout=5)  # hangs and drips end on stopping and write their record line


def make_server(port: int, record: Path, plan: FaultPlan | None = None) -> ThreadingHTTPServer:
    lock = threading.Lock()
    faults = _Faults(plan) if plan is not None else None

    seen: Counter[str] = Counter()  # requests per path, for /fail-first/<n>/

    def path_status(path: str) -> int:
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "fail-first" and parts[1].isdigit():
            with lock:
                seen[path] += 1
                return 500 if seen[path] <= int(parts[1]) else 204
        return _path_status(path)

    def write(entry: dict[str, Any]) -> None:
        with lock, record.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if faults is None:
                received_at, body = time.time(), self._body()
                self._answer(path_status(self.path), received_at=received_at, body=body, sequence=None, fault=None)
                return
            with faults.busy():
                self._answer_by_plan(faults)

        def do_GET(self) -> None:  # noqa: N802
            if faults is not None and _under_redirect_target(self.path):
                with faults.busy():
                    self._answer_by_plan(faults)
                return
            # What http.server answers a method without a do_ method, as it did before this one existed.
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")

        def _body(self) -> str:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length).decode("utf-8", errors="replace")

        def _entry(
            self, received_at: float, body: str, status: int | None, fault: Fault | None, answered: bool, sequence: int | None
        ) -> None:
            write(
                {
                    "received_at": received_at,
                    "method": self.command,
                    "path": self.path,
                    "status": status,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "notification_id": self.headers.get(NOTIFICATION_ID_HEADER),
                    "fault": fault,
                    "answered": answered,
                    "sequence": sequence,
                }
            )

        def _answer(
            self, status: int, *, received_at: float, body: str, sequence: int | None, fault: Fault | None, location: str = ""
        ) -> None:
            status, content_type, payload = channel_apis.answer(self.path, status, dict(self.headers.items()), body)
            self._entry(received_at, body, status, fault, True, sequence)
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            if payload:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        def _answer_by_plan(self, faults: _Faults) -> None:
            received_at = time.time()
            body = self._body()
            if _under_redirect_target(self.path):
                # A followed redirect: recorded as it came, never faulted, and no draw, so that a
                # client that follows does not shift the faults of the requests after it.
                self._answer(204, received_at=received_at, body=body, sequence=None, fault=None)
                return
            sequence, fault = faults.draw()
            plan = faults.plan
            status = path_status(self.path)
            if fault == "error":
                self._answer(plan.error_status, received_at=received_at, body=body, sequence=sequence, fault=fault)
            elif fault == "redirect":
                location = REDIRECT_PREFIX + (self.path if self.path.startswith("/") else "/")
                self._answer(302, received_at=received_at, body=body, sequence=sequence, fault=fault, location=location)
            elif fault == "hang":
                self._entry(received_at, body, None, fault, False, sequence)  # nothing is answered, whatever happens next
                faults.stopping.wait(plan.hang_seconds)
                self.close_connection = True  # then closed without a word: the client sees the connection end
            elif fault == "drip":
                answered = self._drip(status, plan.drip_seconds, faults.stopping)
                self._entry(received_at, body, status, fault, answered, sequence)
                self.close_connection = True
            else:
                self._answer(status, received_at=received_at, body=body, sequence=sequence, fault=None)

        def _drip(self, status: int, seconds: float, stopping: threading.Event) -> bool:
            """Write the answer's head a byte at a time over ``seconds``; True when all of it was written."""
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = ""
            head = (
                f"{self.protocol_version} {status} {phrase}\r\nServer: {self.version_string()}\r\n"
                f"Date: {self.date_time_string()}\r\nContent-Length: 0\r\n\r\n"
            ).encode("latin-1")
            # One segment per byte: Nagle's algorithm would hold a byte back until the previous one is
            # acknowledged, sending them in bursts.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            step = seconds / max(1, len(head) - 1)  # the first byte at once, the last after ``seconds``
            start = time.monotonic()
            for index in range(len(head)):
                if stopping.wait(max(0.0, start + index * step - time.monotonic())):
                    return False
                try:
                    self.wfile.write(head[index : index + 1])
                except OSError:  # the client hung up (its deadline): the rest has nowhere to go
                    return False
            return True

        def log_message(self, *args: object) -> None:  # keep the demo's output readable
            pass

    if faults is None:
        return _Server(("127.0.0.1", port), Handler)
    return _FaultyServer(port, Handler, faults)


def _path_status(path: str) -> int:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "status" and parts[1].isdigit():
        return int(parts[1])
    return 204


def _under_redirect_target(path: str) -> bool:
    return path == REDIRECT_PREFIX or path.startswith(REDIRECT_PREFIX + "/") or path.startswith(REDIRECT_PREFIX + "?")


class _Stop(BaseException):
    """Raised by the SIGTERM handler: a BaseException, so socketserver's ``except Exception`` lets it by."""


def serve_forever(port: int, record: Path, port_file: Path | None = None, plan: FaultPlan | None = None) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.touch()
    server = make_server(port, record, plan)
    if port_file:
        port_file.write_text(str(server.server_address[1]))
    if plan is None:
        print(f"webhook receiver listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()
        return
    print(f"webhook receiver listening on http://127.0.0.1:{server.server_address[1]} with a fault plan: {plan}", flush=True)

    # SIGTERM (how tests and soaks stop a receiver) stops one with a plan gracefully: its hangs and
    # drips end at once and are recorded before it exits, so that the record is complete.
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM while the record is completed: stop now
        server.server_close()


def read_record(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]


class Summary(TypedDict):
    received: int  # record lines: requests that reached the handler
    acknowledged: int  # distinct notification ids answered 2xx (the whole answer written)
    duplicates: int  # notification ids answered 2xx more than once
    faults: dict[str, int]  # requests per fault kind, every kind present
    followed_redirects: int  # requests under /redirected/: a client followed a redirect fault


def summary(record: Path) -> Summary:
    """What a soak reconciles against its delivery ledger. Reads records of receivers without a plan too."""
    entries = read_record(record)
    acknowledgements: Counter[str] = Counter()
    faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
    followed = 0
    for entry in entries:
        fault = entry.get("fault")
        if fault in faults:
            faults[fault] += 1
        if _under_redirect_target(entry.get("path", "")):
            followed += 1
        identifier = entry.get("notification_id") or entry.get("headers", {}).get(NOTIFICATION_ID_HEADER.lower())
        status = entry.get("status")
        # A drip the client hung up on was never received as an answer: no acknowledgement.
        if identifier and isinstance(status, int) and 200 <= status < 300 and entry.get("answered", True):
            acknowledgements[identifier] += 1
    return {
        "received": len(entries),
        "acknowledged": len(acknowledgements),
        "duplicates": sum(1 for count in acknowledgements.values() if count > 1),
        "faults": faults,
        "followed_redirects": followed,
    }
