"""Guarded webhook delivery: one POST to a tenant's URL, that cannot be turned against us.

A tenant chooses its webhook URL, so the URL is untrusted input to a request made from inside our
network. ``post`` closes the three ways the plain ``urllib`` delivery could be abused:

- **Redirects are never followed.** Any 3xx is a ``DeliveryError``: urllib would have re-sent the
  request as a GET to wherever ``Location`` pointed, and counted that as delivered.
- **Only publicly routable addresses are reached.** The host is resolved once; if ANY of its
  addresses is loopback, private, link-local (the instance metadata service), multicast, reserved,
  CGNAT, or an IPv6 form embedding one of those, nothing is sent. The connection then goes to an
  address that was checked (no second lookup that DNS rebinding could answer differently), with TLS
  verified against the URL's hostname. ``Policy.allowed_networks`` lets local development reach
  127.0.0.1 on purpose.
- **One absolute deadline bounds the whole exchange.** Socket timeouts only bound each socket
  operation (a receiver dripping one byte per second never trips them), so a watchdog timer shuts
  the socket down at the deadline, whatever call is blocked on it; resolving, connecting, the TLS
  handshake, sending, the status line, the headers and (for a 2xx) a body of at most
  ``MAX_RESPONSE_BODY`` bytes must all be over by then.

Errors are ``DeliveryError`` with a message for the delivery ledger. Messages name the URL's
origin (scheme, host, port), never its path or query, which may hold a tenant's token.

Standard library only: this runs in the Lambda image, where cold starts pay for every import.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# socket.getaddrinfo's shape, called as resolver(host, port, family, type): the results' sockaddr
# (their last item) starts with the address as a string.
Resolver = Callable[[str, int, int, int], Sequence[tuple[Any, Any, Any, Any, tuple[Any, ...]]]]
_Resolved = tuple[IPAddress, int, tuple[Any, ...]]  # an address, its socket family, the sockaddr to connect to

MAX_RESPONSE_BODY: Final = 64 * 1024  # a 2xx body longer than this fails the delivery: receivers answer briefly
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
# Set by post itself; a caller's value would change what is sent or how it is framed.
_RESERVED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")  # what urlsplit leaves of a DNS name: lowercased


class DeliveryError(Exception):
    """The notification was not delivered; the message says why, for the delivery ledger."""


# How a delivery the deadline cut short ends: the receiver may have acted all the same, so a later
# attempt can deliver it twice (docs/guarantees.md).
TOO_LATE: Final = "did not complete within the delivery deadline"


@dataclass(frozen=True)
class Policy:
    """What delivery allows beyond https to publicly routable addresses (both for local development)."""

    allow_http: bool = False  # plain http, unencrypted and unauthenticated
    # Networks reachable although refused otherwise, e.g. 127.0.0.0/8 for a receiver on this machine.
    allowed_networks: tuple[IPNetwork, ...] = ()

    def __post_init__(self) -> None:
        for network in self.allowed_networks:
            if network.prefixlen == 0:  # 0.0.0.0/0 or ::/0 would switch the address guard off
                raise ValueError(f"allowed network {network} allows every address; name the networks to allow")

    @classmethod
    def from_settings(cls, allow_http: str = "false", allowed_networks: str = "") -> Policy:
        """The policy from settings as Terraform passes them in environment variables.

        ``allow_http``: "true" or "false" (Terraform's ``tostring`` of a bool; empty means false).
        ``allowed_networks``: CIDRs separated by commas or spaces, e.g. "127.0.0.0/8,::1/128"; empty
        for none. A malformed value raises ``ValueError``: a misconfigured function should fail
        loudly, not deliver with a policy nobody meant.
        """
        flag = allow_http.strip().lower()
        if flag not in ("true", "false", ""):
            raise ValueError(f"allow_http must be 'true' or 'false', not {allow_http!r}")
        networks = []
        for text in allowed_networks.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(text))  # strict: 127.0.0.1/8 is a typo, not 127.0.0.0/8
            except ValueError as exc:
                raise ValueError(f"allowed network {text!r} is not a network in CIDR form: {exc}") from None
        return cls(allow_http=flag == "true", allowed_networks=tuple(networks))


@dataclass(frozen=True)
class Response:
    """A 2xx answer: its status and body (at most ``MAX_RESPONSE_BODY`` bytes)."""

    status: int
    body: bytes


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
    policy: Policy,
    resolver: Resolver = socket.getaddrinfo,
) -> int:
    """POST ``body`` to ``url`` with ``headers``; the 2xx status, or ``DeliveryError`` (``request``)."""
    return request(url, body, headers, deadline=deadline, policy=policy, resolver=resolver).status


def request(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
    policy: Policy,
    resolver: Resolver = socket.getaddrinfo,
) -> Response:
    """POST ``body`` to ``url`` with ``headers``; the 2xx answer, or ``DeliveryError``. (APIs such as
    Slack's answer 200 with an error in the body: their callers read it.)

    ``deadline`` is an absolute ``time.monotonic()`` value by which the whole exchange is over.
    ``headers`` may not set Host, Content-Length, Transfer-Encoding or Connection, nor hold CR, LF
    or NUL (``ValueError``, a caller's mistake): post sets those itself. ``resolver`` is
    ``socket.getaddrinfo`` unless a test injects another.
    """
    if time.monotonic() >= deadline:
        raise DeliveryError("webhook not attempted: the delivery deadline had already passed")
    reserved = sorted(name for name in headers if name.lower() in _RESERVED_HEADERS)
    if reserved:
        raise ValueError(f"post sets these headers itself: {', '.join(reserved)}")
    if any(c in text for item in headers.items() for text in item for c in "\r\n\0"):
        raise ValueError("header names and values may not contain CR, LF or NUL")  # before connecting, not after
    target = _target(url, policy)
    addresses = _resolve(target, resolver, deadline)
    for address, _, sockaddr in addresses:
        reason = refusal(address)
        if reason is not None and not _allowed(address, policy):
            # The address as the resolver wrote it (::ffff:127.0.0.1, where str() would say ::ffff:7f00:1).
            raise DeliveryError(f"webhook host {target.host} resolves to {sockaddr[0]}, which is {reason}: refused")
    with _Watchdog(deadline) as watchdog:
        try:
            return _exchange(target, addresses, body, headers, deadline, watchdog)
        except (OSError, http.client.HTTPException) as exc:
            # After the watchdog shut the socket down, whatever broke is the deadline's doing.
            if watchdog.expired or time.monotonic() >= deadline:
                raise DeliveryError(f"webhook {target.origin} {TOO_LATE}") from None
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise DeliveryError(f"webhook {target.origin}: TLS certificate not trusted: {exc.verify_message}") from None
            raise DeliveryError(f"webhook {target.origin} failed: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # as urlsplit gives it: lowercased, IPv6 literals without brackets
    port: int
    path: str  # path and query, what the request line carries
    host_header: str  # host[:port], the port only when the URL names a non-default one

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host_header}"

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def _target(url: str, policy: Policy) -> _Target:
    """The URL's parts, or DeliveryError when the URL is not one we deliver to."""
    # Non-ASCII and control characters have no place in a request line; refusing them here also
    # rules out header injection through the path.
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise DeliveryError("webhook URL must be ASCII without spaces or control characters (percent-encode them)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise DeliveryError(f"webhook URL is malformed: {exc}") from None
    try:
        explicit_port = parts.port
    except ValueError:
        raise DeliveryError(f"webhook URL port must be a number from 1 to 65535: {parts.netloc.rpartition(':')[2]!r}") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        allowed = "https or http" if policy.allow_http else "https"
        raise DeliveryError(f"webhook URL must use {allowed}, not {scheme or 'no scheme'}")
    if "@" in parts.netloc:
        raise DeliveryError("webhook URL must not carry credentials (user:password@host)")
    host = parts.hostname or ""
    if not host:
        raise DeliveryError("webhook URL has no host")
    literal = ":" in host
    if literal:
        try:
            if "%" in host:  # a zone (fe80::1%eth0) names an interface of ours: never a tenant's business
                raise ValueError(host)
            ipaddress.IPv6Address(host)
        except ValueError:
            raise DeliveryError(f"webhook URL host [{host}] is not an IPv6 address (without a zone)") from None
    elif not _HOSTNAME.fullmatch(host):
        raise DeliveryError(f"webhook URL host {host!r} is not a host name")
    if explicit_port is not None and not 1 <= explicit_port <= 65535:
        raise DeliveryError(f"webhook URL port must be a number from 1 to 65535: {explicit_port!r}")
    port = explicit_port or _DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if literal else host
    if port != _DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port, path, host_header)


def _resolve(target: _Target, resolver: Resolver, deadline: float) -> list[_Resolved]:
    """The host's addresses (each with its socket family and sockaddr), looked up once, by the deadline."""
    # getaddrinfo cannot be interrupted, so it runs in a thread we stop waiting for at the deadline.
    outcome: list[Sequence[tuple[Any, Any, Any, Any, tuple[Any, ...]]] | Exception] = []

    def lookup() -> None:
        try:
            outcome.append(resolver(target.host, target.port, 0, socket.SOCK_STREAM))
        except Exception as exc:  # reported below, from the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=lookup, name="webhook-resolve", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if not outcome:
        raise DeliveryError(f"webhook host {target.host} did not resolve within the delivery deadline")
    result = outcome[0]
    if isinstance(result, Exception):
        raise DeliveryError(f"webhook host {target.host} does not resolve: {result}")
    addresses = []
    for family, _, _, _, sockaddr in result:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0]).partition("%")[0]  # an IPv6 scope (fe80::1%eth0) is no part of the address
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise DeliveryError(f"webhook host {target.host} resolves to {text!r}, which is not an IP address") from None
        addresses.append((address, int(family), sockaddr))
    if not addresses:
        raise DeliveryError(f"webhook host {target.host} resolves to no IPv4 or IPv6 address")
    return addresses


# Where a webhook must never go, with the reason the refusal gives. Checked in order: the AWS IPv6
# metadata address comes before the private range that holds it, for the clearer message. The
# ipaddress module's own flags are consulted after this table, but are not enough by themselves:
# they differ between Python versions and, for example, call multicast and 6to4 addresses global.
_REFUSED: Final[tuple[tuple[IPNetwork, str], ...]] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "unspecified ('this network', 0.0.0.0/8)"),
        ("10.0.0.0/8", "private (RFC 1918, 10.0.0.0/8)"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT, 100.64.0.0/10)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        ("169.254.169.254/32", "the cloud instance metadata service (link-local 169.254.169.254)"),
        ("169.254.0.0/16", "link-local (169.254.0.0/16)"),
        ("172.16.0.0/12", "private (RFC 1918, 172.16.0.0/12)"),
        ("192.0.0.0/24", "reserved for IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.0/24", "reserved for documentation (192.0.2.0/24)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast range (192.88.99.0/24)"),
        ("192.168.0.0/16", "private (RFC 1918, 192.168.0.0/16)"),
        ("198.18.0.0/15", "reserved for benchmarking (198.18.0.0/15)"),
        ("198.51.100.0/24", "reserved for documentation (198.51.100.0/24)"),
        ("203.0.113.0/24", "reserved for documentation (203.0.113.0/24)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4, broadcast included)"),
        ("::/128", "unspecified (::)"),
        ("::1/128", "loopback (::1)"),
        ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
        ("100::/64", "discard-only (100::/64)"),
        ("2001::/32", "a Teredo tunnel address (2001::/32)"),
        ("2001::/23", "reserved for IETF protocol assignments (2001::/23)"),
        ("2001:db8::/32", "reserved for documentation (2001:db8::/32)"),
        ("3fff::/20", "reserved for documentation (3fff::/20)"),
        ("fd00:ec2::254/128", "the AWS instance metadata service (IPv6, fd00:ec2::254)"),
        ("fc00::/7", "private (unique local, fc00::/7)"),
        ("fe80::/10", "link-local (fe80::/10)"),
        ("fec0::/10", "site-local (deprecated, fec0::/10)"),
        ("ff00::/8", "multicast (ff00::/8)"),
    )
)
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
# IPv6 forms that carry an IPv4 address. Through the mapped and NAT64 forms a connection really goes
# to that IPv4 address, so they are judged as it; the others are deprecated transition mechanisms,
# refused whatever they embed.
_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form; None if it carries none."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_MAPPED:
        return low32, "IPv4-mapped"
    if address in _NAT64:
        return low32, "NAT64"
    if address in _IPV4_TRANSLATED:
        return low32, "IPv4-translated"
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves, not IPv4
        return low32, "IPv4-compatible"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def refusal(address: IPAddress) -> str | None:
    """Why delivery refuses ``address`` (without any policy), or None when it is publicly routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, form = embedded
            reason = refusal(inner)
            if reason is not None:
                return f"the {form} form of {inner}: {reason}"
            if form in ("IPv4-mapped", "NAT64"):
                return None
            return f"the {form} form of {inner} (a deprecated IPv6 transition mechanism)"
    for network, reason in _REFUSED:
        if address.version == network.version and address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "not a global unicast IPv6 address (outside 2000::/3)"
    if not address.is_global or address.is_multicast or address.is_reserved or address.is_link_local:
        return "not globally routable"
    return None


def _allowed(address: IPAddress, policy: Policy) -> bool:
    """Whether the policy's allow-list holds the address, or the IPv4 address it is a mapped form of."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(a.version == n.version and a in n for a in candidates for n in policy.allowed_networks)


class _Watchdog:
    """Shuts the watched socket down at the deadline, waking whatever call is blocked on it.

    A socket timeout restarts with every byte received; shutdown(2) from another thread makes a
    blocked connect, recv or send return at once (recv with end of file), so the exchange ends.
    Because end of file can also look like a complete response (headers end at EOF; a body without
    a length ends at EOF), the exchange asks ``disarm`` whether the deadline struck before trusting
    what it read. A lock orders the timer's shutdown against closing, so the timer never touches a
    closed socket (whose descriptor number may already belong to another file).
    """

    def __init__(self, deadline: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._armed = True
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        """Watch ``sock`` from now on (the TLS socket replaces the TCP socket it wraps)."""
        with self._lock:
            self._socket = sock
            if self.expired:
                self._shutdown()

    def disarm(self) -> bool:
        """Stop the timer; True when the deadline had not struck yet."""
        with self._lock:
            self._armed = False
            self._timer.cancel()
            return not self.expired

    def _expire(self) -> None:
        with self._lock:
            if self._armed:
                self.expired = True
                self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is not None:
            try:
                # socket.socket's own shutdown, also for a TLS socket: SSLSocket.shutdown would
                # unwrap the TLS layer under the feet of the thread reading from it.
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
            except OSError:
                pass  # not connected yet, or already closed by the peer: nothing to wake

    def __enter__(self) -> _Watchdog:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.disarm()
        if self._socket is not None:
            self._socket.close()


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTPConnection on a socket post opened to a checked address; it never connects by itself."""

    def connect(self) -> None:
        # http.client would resolve the host again (a second answer DNS rebinding could change).
        raise http.client.HTTPException("the connection is closed and is not reopened")


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the delivery deadline passed")
    return left


def _tls_context() -> ssl.SSLContext:
    # Certificate and hostname verification, the system's trusted CAs, TLS 1.2 at least.
    return ssl.create_default_context()


def _connect(target: _Target, addresses: list[_Resolved], deadline: float, watchdog: _Watchdog) -> socket.socket:
    """A connected socket (TLS-wrapped and verified for https) to the first checked address that answers."""
    failures = []
    for address, family, sockaddr in addresses:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)  # fails where the family is not supported
        except OSError as exc:
            failures.append(f"{address}: {exc}")
            continue
        watchdog.watch(sock)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(sockaddr)
        except OSError as exc:
            watchdog.watch(None)
            sock.close()
            if watchdog.expired or isinstance(exc, TimeoutError):
                raise
            failures.append(f"{address}: {exc}")  # refused or unreachable: the next checked address may answer
            continue
        if not target.tls:
            return sock
        # Verification against the URL's hostname, not the address connected to; SNI names it too.
        # The handshake runs after the TLS socket is watched, so the deadline bounds it as well.
        tls = _tls_context().wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
        watchdog.watch(tls)
        tls.settimeout(_remaining(deadline))
        tls.do_handshake()
        return tls
    raise DeliveryError(f"webhook {target.origin} unreachable: {'; '.join(failures)}")


def _exchange(
    target: _Target,
    addresses: list[_Resolved],
    body: bytes,
    headers: Mapping[str, str],
    deadline: float,
    watchdog: _Watchdog,
) -> Response:
    sock = _connect(target, addresses, deadline, watchdog)
    connection = _PinnedConnection(target.host, target.port)
    connection.sock = sock
    response: http.client.HTTPResponse | None = None
    try:
        connection.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", target.host_header)
        for name, value in headers.items():
            connection.putheader(name, value)  # http.client refuses CR/LF in names and values
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Connection", "close")
        sock.settimeout(_remaining(deadline))
        connection.endheaders(body)
        sock.settimeout(_remaining(deadline))
        response = connection.getresponse()
        status = response.status
        answer = b""
        if 200 <= status < 300:
            sock.settimeout(_remaining(deadline))
            # At most one byte more than allowed: enough to know the body is too long.
            answer = response.read(MAX_RESPONSE_BODY + 1)
        location = response.getheader("Location", "")
    finally:
        in_time = watchdog.disarm()  # before anything is closed: see _Watchdog
        if response is not None:
            response.close()  # it holds the socket open (http.client hands a closing connection to its response)
        connection.close()
    if not in_time:
        raise TimeoutError("the delivery deadline passed")  # what was read may have been cut short
    if 300 <= status < 400:
        where = f" to {location[:200]!r}" if location else ""
        raise DeliveryError(f"webhook {target.origin} answered HTTP {status}, a redirect{where}: redirects are not followed")
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook {target.origin} answered HTTP {status}")
    if len(answer) > MAX_RESPONSE_BODY:
        raise DeliveryError(f"webhook {target.origin} answered HTTP {status} with a body longer than {MAX_RESPONSE_BODY} bytes")
    return Response(status, answer)
