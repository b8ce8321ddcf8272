"""Guarded webhook delivery (handlers.webhook), against real receivers on 127.0.0.1.

Nothing here reaches beyond 127.0.0.1: an autouse fixture fails any connection elsewhere, and the
cases about other addresses either use a stub resolver with connecting forbidden altogether (the
refusal must come before any connection), or, for addresses the guard lets through, a connect that
records where it was asked to go and fails without touching the network.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from handlers import webhook
from handlers.webhook import DeliveryError, Policy

LOCAL = Policy(allow_http=True, allowed_networks=(ip_network("127.0.0.0/8"),))
BODY = b'{"notification_id":"n-1","tenant_id":"acme","text":"coaching"}'
HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "coachflow",
    "X-Coachflow-Timestamp": "1700000000",
    "X-Coachflow-Signature": "sha256=abc123",
}
BUDGET = 2.0  # seconds each deadline case gets
MARGIN = 1.5  # how late after its deadline a delivery may end on a noisy machine
_real_connect = socket.socket.connect


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


# --- safety nets: where connections may go ----------------------------------------------------------


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: a connection anywhere but 127.0.0.1 fails the test instead of leaving the machine."""

    def connect(sock: socket.socket, address: Any) -> None:
        if not (isinstance(address, tuple) and address[0] == "127.0.0.1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to connect or start TLS fails the test: the refusal must come before. Returns the attempts."""
    attempts: list[Any] = []

    def forbidden(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise AssertionError(f"connection attempted before the refusal: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", forbidden)
    return attempts


class StubResolver:
    """getaddrinfo's shape, answering fixed addresses; counts its calls."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        self.calls.append((host, port, *args))
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.addresses
        ]


RESOLVED_ANYWAY: list[tuple[Any, ...]] = []


def no_resolving(*args: Any) -> list[Any]:
    # post runs the resolver in a thread and reports its exceptions as DeliveryErrors: recorded too,
    # so that the check_nothing_resolved_anyway fixture fails the test whatever the error says.
    RESOLVED_ANYWAY.append(args)
    raise AssertionError(f"resolved although the URL should have been refused first: {args!r}")


@pytest.fixture(autouse=True)
def check_nothing_resolved_anyway() -> Iterator[None]:
    RESOLVED_ANYWAY.clear()
    yield
    assert RESOLVED_ANYWAY == []


# --- receivers ----------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


class Receiver:
    """A real HTTP(S) receiver on 127.0.0.1 answering every request with ``status`` and ``headers``."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(Received(self.command, self.path, list(self.headers.items()), body))
                reply = b"" if status in (204, 304) or 300 <= status < 400 else b'{"ok":true}'
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST  # what a client following a 303 would send

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                sock, peer = self.socket.accept()
                if tls is None:
                    return sock, peer
                sock.settimeout(5)
                return tls.wrap_socket(sock, server_side=True), peer  # a failed handshake is dropped by socketserver

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*args: Any, **kwargs: Any) -> Receiver:
        started.append(Receiver(*args, **kwargs))
        return started[-1]

    yield start
    for r in started:
        r.close()


class RawPeer:
    """A TCP peer on 127.0.0.1 that runs ``behave(connection, stop)`` for each connection: misbehaviour on demand."""

    def __init__(self, behave: Callable[[socket.socket, threading.Event], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.behave = behave
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.behave(conn, self.stop)
            except OSError:
                pass  # the client gave up (its deadline): what these peers are for

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], RawPeer]]:
    started: list[RawPeer] = []

    def start(behave: Callable[[socket.socket, threading.Event], None]) -> RawPeer:
        started.append(RawPeer(behave))
        return started[-1]

    yield start
    for p in started:
        p.close()


def read_request(conn: socket.socket) -> bytes:
    """Read one request (head and Content-Length body) so the client is done sending."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += conn.recv(4096)
    return data


# --- what a good delivery looks like --------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_a_2xx_returns_its_status_and_the_receiver_gets_exactly_the_body_and_headers(receiver, status: int) -> None:
    hook = receiver(status)
    assert webhook.post(hook.url("/hook/acme?v=1"), BODY, HEADERS, deadline=soon(), policy=LOCAL) == status
    [got] = hook.received
    assert (got.method, got.path, got.body) == ("POST", "/hook/acme?v=1", BODY)
    # Exactly these headers, nothing more (no Accept-Encoding, no second Host), the caller's untouched.
    assert got.headers == [
        ("Host", f"127.0.0.1:{hook.port}"),
        *HEADERS.items(),
        ("Content-Length", str(len(BODY))),
        ("Connection", "close"),
    ]


def test_the_connection_goes_to_the_address_that_was_checked_resolved_once(receiver, monkeypatch) -> None:
    # DNS rebinding: a second lookup could answer with an internal address. There is no second lookup:
    # the resolver is asked once, getaddrinfo never, and the request arrives (with the URL's Host).
    monkeypatch.setattr(socket, "getaddrinfo", no_resolving)
    hook = receiver(200)
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def rebinding(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        return StubResolver(*next(answers))(host, port)

    assert webhook.post(hook.url(host="rebind.test"), BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=rebinding) == 200
    assert calls == ["rebind.test"]
    assert dict(hook.received[0].headers)["Host"] == f"rebind.test:{hook.port}"


# --- redirects and error statuses -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_delivery_error_and_is_not_followed(receiver, status: int) -> None:
    elsewhere = receiver(200)
    hook = receiver(status, {"Location": elsewhere.url("/landed")})
    with pytest.raises(DeliveryError, match=rf"HTTP {status}.*redirects are not followed") as caught:
        webhook.post(hook.url(), BODY, HEADERS, deadline=soon(), policy=LOCAL)
    assert elsewhere.url("/landed") in str(caught.value)  # where it pointed, for the tenant to fix its URL
    assert [r.method for r in hook.received] == ["POST"]
    assert elsewhere.received == []


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
def test_an_error_status_is_a_delivery_error_naming_it(receiver, status: int) -> None:
    hook = receiver(status)
    with pytest.raises(DeliveryError, match=rf"answered HTTP {status}$"):
        webhook.post(hook.url(), BODY, HEADERS, deadline=soon(), policy=LOCAL)
    assert len(hook.received) == 1


# --- the deadline -----------------------------------------------------------------------------------------


def drip(data: bytes, interval: float) -> Callable[[socket.socket, threading.Event], None]:
    """Read the request, then send ``data`` one byte per ``interval`` (forever when it is a generator)."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        for byte in data:
            conn.sendall(bytes([byte]))
            if stop.wait(interval):
                return

    return behave


def endless(head: bytes, piece: bytes, interval: float) -> Callable[[socket.socket, threading.Event], None]:
    """Read the request, send ``head``, then ``piece`` every ``interval`` seconds until the client goes."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(head)
        while not stop.wait(interval):
            conn.sendall(piece)

    return behave


def silent(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    stop.wait()


def mute(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait()  # not even a TLS ServerHello


def timed(url: str, budget: float, **kwargs: Any) -> tuple[float, DeliveryError]:
    """Deliver with ``budget`` seconds: how long until the DeliveryError, and the error."""
    start = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        webhook.post(url, BODY, HEADERS, deadline=start + budget, **kwargs)
    return time.monotonic() - start, caught.value


SLOW_PEERS = {
    # 38 bytes at one per second: 38 s, though no socket operation ever waits more than a second.
    "status line and headers dripped a byte a second": drip(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1.0),
    "accepts, reads, never answers": silent,
    # Cut short at the deadline, a body without a length looks complete: it must not count as delivered.
    "endless body without a length, dripped": endless(b"HTTP/1.1 200 OK\r\n\r\n", b"x", 0.1),
    "endless chunked body, dripped": endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n", 0.1),
    "endless interim 100 Continue responses": endless(b"", b"HTTP/1.1 100 Continue\r\n\r\n", 0.1),
}


@pytest.mark.parametrize("behaviour", list(SLOW_PEERS))
def test_a_slow_or_silent_receiver_ends_in_a_delivery_error_at_the_deadline(peer, behaviour: str) -> None:
    slow = peer(SLOW_PEERS[behaviour])
    elapsed, error = timed(f"http://127.0.0.1:{slow.port}/hook", BUDGET, policy=LOCAL)
    print(f"\n[deadline] {behaviour}: budget {BUDGET:.1f}s, DeliveryError after {elapsed:.2f}s")
    assert "deadline" in str(error)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + MARGIN  # ended by the deadline, and because of it


def test_a_tls_handshake_never_answered_ends_at_the_deadline(peer) -> None:
    slow = peer(mute)
    elapsed, error = timed(f"https://hook.test:{slow.port}/", BUDGET, policy=LOCAL, resolver=StubResolver("127.0.0.1"))
    print(f"\n[deadline] TLS handshake never answered: budget {BUDGET:.1f}s, DeliveryError after {elapsed:.2f}s")
    assert "deadline" in str(error)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + MARGIN


def test_a_connection_never_accepted_ends_at_the_deadline() -> None:
    # A listener whose accept queue is full drops SYNs: connecting hangs as towards a black hole.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.3)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel accepted every connection: cannot make connect hang on 127.0.0.1")
        elapsed, error = timed(f"http://127.0.0.1:{port}/", BUDGET, policy=LOCAL)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    print(f"\n[deadline] connect never accepted: budget {BUDGET:.1f}s, DeliveryError after {elapsed:.2f}s")
    assert "deadline" in str(error)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + MARGIN


def test_an_endless_fast_body_is_cut_off_at_the_cap(peer) -> None:
    flood = peer(endless(b"HTTP/1.1 200 OK\r\n\r\n", b"x" * 65536, 0.0))
    elapsed, error = timed(f"http://127.0.0.1:{flood.port}/", BUDGET, policy=LOCAL)
    print(f"\n[deadline] endless fast body: budget {BUDGET:.1f}s, DeliveryError after {elapsed:.2f}s")
    assert f"body longer than {webhook.MAX_RESPONSE_BODY} bytes" in str(error)
    assert elapsed <= BUDGET + MARGIN


def test_endless_headers_are_a_delivery_error(peer) -> None:
    flood = peer(endless(b"HTTP/1.1 200 OK\r\n", b"X-Filler: x\r\n", 0.0))
    elapsed, error = timed(f"http://127.0.0.1:{flood.port}/", BUDGET, policy=LOCAL)
    assert "headers" in str(error) or "deadline" in str(error)
    assert elapsed <= BUDGET + MARGIN


def test_a_deadline_already_passed_fails_at_once_without_resolving_or_connecting(no_connection) -> None:
    for deadline in (time.monotonic() - 1, time.monotonic()):
        start = time.monotonic()
        with pytest.raises(DeliveryError, match="deadline had already passed"):
            webhook.post("https://hook.test/", BODY, HEADERS, deadline=deadline, policy=LOCAL, resolver=no_resolving)
        assert time.monotonic() - start < 0.5
    assert no_connection == []


def test_a_resolver_that_hangs_ends_at_the_deadline(no_connection) -> None:
    release = threading.Event()

    def hanging(*args: Any) -> list[Any]:
        release.wait(30)
        return []

    try:
        elapsed, error = timed("https://hook.test/", BUDGET, policy=LOCAL, resolver=hanging)
    finally:
        release.set()
    assert "did not resolve within the delivery deadline" in str(error)
    assert BUDGET * 0.9 <= elapsed <= BUDGET + MARGIN


# --- what is refused before any connection -----------------------------------------------------------------


def test_loopback_is_refused_without_the_allow_list(receiver, no_connection) -> None:
    hook = receiver(200)
    with pytest.raises(DeliveryError, match=r"resolves to 127\.0\.0\.1, which is loopback"):
        webhook.post(hook.url(), BODY, HEADERS, deadline=soon(), policy=Policy(allow_http=True))  # the real getaddrinfo
    assert hook.received == [] and no_connection == []


def test_http_is_refused_when_https_is_required(no_connection) -> None:
    with pytest.raises(DeliveryError, match="must use https, not http"):
        webhook.post("http://hook.test/", BODY, HEADERS, deadline=soon(), policy=Policy(), resolver=no_resolving)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://user:secret@hook.test/", "must not carry credentials"),
        ("https://user@hook.test/", "must not carry credentials"),
        ("https:///path", "has no host"),
        ("https://:443/", "has no host"),
        ("https://hook.test:0/", "port must be a number from 1 to 65535: 0"),
        ("https://hook.test:65536/", "port must be a number from 1 to 65535: '65536'"),
        ("https://hook.test:99999/", "port must be a number from 1 to 65535: '99999'"),
        ("https://hook.test:https/", "port must be a number from 1 to 65535: 'https'"),
        ("https://hook.test:-1/", "port must be a number from 1 to 65535: '-1'"),
        ("https://[::1/", "malformed"),
        ("ftp://hook.test/", "must use https or http, not ftp"),
        ("file:///etc/passwd", "must use https or http, not file"),
        ("hook.test/path", "not no scheme"),
        ("https://hook.test/a b", "ASCII without spaces or control characters"),
        ("https://hook.test/\r\nX-Injected: 1", "ASCII without spaces or control characters"),
        ("https://hôte.test/", "ASCII without spaces or control characters"),
        ("https://%31%32%37.0.0.1/", "is not a host name"),
        ("https://[fe80::1%25eth0]/", "is not an IPv6 address"),
    ],
)
def test_a_url_we_do_not_deliver_to_is_refused_before_resolving(url: str, message: str, no_connection) -> None:
    with pytest.raises(DeliveryError, match="webhook URL") as caught:
        webhook.post(url, BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=no_resolving)
    assert message in str(caught.value)


REFUSED = [
    ("169.254.169.254", "instance metadata service"),
    ("169.254.1.1", "link-local"),
    ("10.0.0.1", "private (RFC 1918"),
    ("172.16.0.1", "private (RFC 1918"),
    ("192.168.1.1", "private (RFC 1918"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("127.1.2.3", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),  # ipaddress calls this one global
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "private (unique local"),
    ("fd12:3456::1", "private (unique local"),
    ("fd00:ec2::254", "AWS instance metadata service"),
    ("ff02::1", "multicast"),
    ("fec0::1", "site-local"),
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("2001::1", "Teredo"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1: loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254: the cloud instance metadata service"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1: private"),
    ("::ffff:0:127.0.0.1", "IPv4-translated form of 127.0.0.1: loopback"),
    ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1: loopback"),
    ("64:ff9b::10.0.0.1", "NAT64 form of 10.0.0.1: private"),
    ("64:ff9b::169.254.169.254", "NAT64 form of 169.254.169.254"),
    ("2002:a00:1::", "6to4 form of 10.0.0.1: private"),  # ipaddress calls this one global
    ("2002:808:808::1", "6to4 form of 8.8.8.8 (a deprecated IPv6 transition mechanism)"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_an_address_that_is_not_publicly_routable_is_refused_before_connecting(address: str, reason: str, no_connection) -> None:
    resolver = StubResolver(address)
    with pytest.raises(DeliveryError) as caught:
        webhook.post("https://hook.test/", BODY, HEADERS, deadline=soon(), policy=Policy(), resolver=resolver)
    assert str(caught.value).startswith(f"webhook host hook.test resolves to {address}, which is ")
    assert reason in str(caught.value) and str(caught.value).endswith(": refused")
    assert len(resolver.calls) == 1 and no_connection == []


@pytest.mark.parametrize(
    "addresses", [("8.8.8.8", "10.0.0.1"), ("10.0.0.1", "8.8.8.8"), ("2001:4860:4860::8888", "8.8.8.8", "fd00:ec2::254")]
)
def test_a_host_with_one_private_address_among_public_ones_is_refused(addresses: tuple[str, ...], no_connection) -> None:
    private = next(a for a in addresses if webhook.refusal(ip_address(a)))
    with pytest.raises(DeliveryError, match=f"resolves to {private}, which is"):
        webhook.post("https://hook.test/", BODY, HEADERS, deadline=soon(), policy=Policy(), resolver=StubResolver(*addresses))
    assert no_connection == []


def test_the_allow_list_allows_its_networks_and_nothing_else(no_connection) -> None:
    with pytest.raises(DeliveryError, match=r"resolves to 10\.0\.0\.1, which is private"):
        webhook.post("http://hook.test/", BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=StubResolver("127.0.0.1", "10.0.0.1"))
    assert no_connection == []


@pytest.mark.parametrize(
    ("addresses", "url", "expected"),
    [
        (("8.8.8.8",), "https://hook.test/", ("8.8.8.8", 443)),
        (("2001:4860:4860::8888",), "https://hook.test:8443/", ("2001:4860:4860::8888", 8443, 0, 0)),
        (("::ffff:8.8.8.8",), "https://hook.test/", ("::ffff:8.8.8.8", 443, 0, 0)),  # mapped: judged as 8.8.8.8
        (("64:ff9b::8.8.8.8",), "https://hook.test/", ("64:ff9b::8.8.8.8", 443, 0, 0)),  # NAT64: judged as 8.8.8.8
    ],
)
def test_a_public_address_passes_the_guard_and_is_the_one_connected_to(monkeypatch, addresses, url, expected) -> None:
    # Proven without any traffic: connect records its destination and fails like a refused port.
    destinations = []

    def connect(sock: socket.socket, address: Any) -> None:
        destinations.append(address)
        raise ConnectionRefusedError("not connecting from a test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    with pytest.raises(DeliveryError, match="unreachable: .*not connecting from a test"):
        webhook.post(url, BODY, HEADERS, deadline=soon(), policy=Policy(), resolver=StubResolver(*addresses))
    assert destinations == [expected]


def test_headers_post_sets_itself_or_that_could_inject_are_a_caller_error(no_connection) -> None:
    for headers in ({"Host": "evil.test"}, {"content-length": "1"}, {"Transfer-Encoding": "chunked"}, {"X-A": "1\r\nX-B: 2"}):
        with pytest.raises(ValueError):
            webhook.post("https://hook.test/", BODY, headers, deadline=soon(), policy=LOCAL, resolver=no_resolving)


# --- the policy ----------------------------------------------------------------------------------------------


def test_policy_from_settings_as_terraform_passes_them() -> None:
    assert Policy.from_settings("false", "") == Policy()
    assert Policy.from_settings() == Policy()
    assert Policy.from_settings("", " ") == Policy()
    assert Policy.from_settings("true", "127.0.0.0/8,::1/128") == Policy(True, (ip_network("127.0.0.0/8"), ip_network("::1/128")))
    assert Policy.from_settings("TRUE", " 127.0.0.0/8 , 10.1.0.0/16 ").allowed_networks == (
        ip_network("127.0.0.0/8"),
        ip_network("10.1.0.0/16"),
    )


@pytest.mark.parametrize(
    ("allow_http", "networks", "message"),
    [
        ("yes", "", "allow_http must be 'true' or 'false'"),
        ("false", "127.0.0.1/8", "not a network in CIDR form"),  # host bits set: a typo, not 127.0.0.0/8
        ("false", "localhost", "not a network in CIDR form"),
        ("false", "0.0.0.0/0", "allows every address"),
        ("false", "::/0", "allows every address"),
    ],
)
def test_policy_from_malformed_settings_fails_loudly(allow_http: str, networks: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.from_settings(allow_http, networks)


# --- TLS ---------------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path  # the CA certificate, PEM
    server: ssl.SSLContext  # a TLS server context with a certificate for hook.test signed by that CA
    server_names: list[str | None]  # SNI names the server was asked for


def _certificate(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool, dns: str | None = None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    )
    if dns is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, server_name: str = "hook.test") -> Pki:
    """A CA and a server certificate for ``server_name``, generated now, trusted by nothing but what loads the CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("coachflow test CA", ca_key, "coachflow test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(server_name, key, "coachflow test CA", ca_key, ca=False, dns=server_name)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "server.pem", directory / "server.key")
    names: list[str | None] = []
    server.sni_callback = lambda _sock, name, _context: names.append(name)  # type: ignore[assignment,func-returns-value]
    return Pki(directory / "ca.pem", server, names)


def trust(monkeypatch: pytest.MonkeyPatch, ca: Path) -> None:
    """Make the module's verifying context trust the test CA too (verification stays on)."""
    default = webhook._tls_context

    def with_test_ca() -> ssl.SSLContext:
        context = default()
        context.load_verify_locations(ca)
        return context

    monkeypatch.setattr(webhook, "_tls_context", with_test_ca)


def test_the_tls_context_verifies_certificates_and_host_names() -> None:
    context = webhook._tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_https_to_an_untrusted_certificate_fails_verification(receiver, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    hook = receiver(200, tls=pki.server)
    with pytest.raises(DeliveryError, match="TLS certificate not trusted: .*certificate"):
        webhook.post(
            hook.url(host="hook.test", scheme="https"), BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=StubResolver("127.0.0.1")
        )
    assert pki.server_names == ["hook.test"]  # the handshake did happen, and named the URL's host
    assert hook.received == []


def test_https_with_a_trusted_certificate_for_the_url_host_delivers(receiver, tmp_path: Path, monkeypatch) -> None:
    pki = make_pki(tmp_path)
    trust(monkeypatch, pki.ca)
    hook = receiver(200, tls=pki.server)
    url = hook.url("/hook", host="hook.test", scheme="https")
    assert webhook.post(url, BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=StubResolver("127.0.0.1")) == 200
    assert pki.server_names == ["hook.test"]  # SNI: the URL's host, not the address connected to
    [got] = hook.received
    assert got.body == BODY and dict(got.headers)["Host"] == f"hook.test:{hook.port}"


def test_https_with_a_trusted_certificate_for_another_host_fails(receiver, tmp_path: Path, monkeypatch) -> None:
    pki = make_pki(tmp_path, server_name="other.test")
    trust(monkeypatch, pki.ca)
    hook = receiver(200, tls=pki.server)
    with pytest.raises(DeliveryError, match="TLS certificate not trusted: Hostname mismatch"):
        webhook.post(
            hook.url(host="hook.test", scheme="https"), BODY, HEADERS, deadline=soon(), policy=LOCAL, resolver=StubResolver("127.0.0.1")
        )
    assert hook.received == []
