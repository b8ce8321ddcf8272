"""What a vendor normalizer works with, owned below both the ingest stage and the vendors.

- ``Line``: one record of a text feed (CSV, W3C, CEF, syslog);
- ``Context``: what a normalizer knows besides the record (whose it is, its uid, when it arrived);
- ``event_uid``: the stable uid of a raw record;
- ``Vendor`` / ``TextVendor``: the contract every module in ``handlers.vendors`` fulfils. Modules
  are checked against these protocols by mypy where the registry lists them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

Event = dict[str, Any]  # a normalized event as a dict, before schema validation (``events.build``)


@dataclass(frozen=True)
class Line:
    """One record of a text feed: its raw text and the fields parsed from it.

    A line that cannot be read is still a ``Line``, with a ``problem``: the ingest stage rejects it
    on its own and reads on, so one broken line never costs its neighbours."""

    text: str
    fields: dict[str, Any] | None  # None for directives and headers, which are not events
    number: int = 0  # where the record starts, 1-based in the text given to parse_text (0: unknown)
    problem: str | None = None  # why the line could not be read (its fields are None then)


class Context(NamedTuple):
    """What a normalizer knows besides the record: whose it is, its uid, when it arrived.

    A NamedTuple, not a frozen dataclass: as immutable, and a third of the cost to build (one per
    record)."""

    tenant: str
    uid: str
    received_ms: int  # when coachflow received the record: the time of last resort

    def part(self, name: str) -> Context:
        """The context of one of several events derived from the same record (one per recipient):
        a stable uid of its own, derived from the record's."""
        return self._replace(uid=hashlib.sha256(f"{self.uid}\x00{name}".encode()).hexdigest()[:32])

    def per(self, names: list[str] | None) -> Iterator[tuple[Context, str | None]]:
        """One context per name (one per recipient of a message, each a person to coach): the first
        keeps the record's uid, so a single recipient's event has the uid of its record."""
        for n, name in enumerate(names or [None]):
            yield (self if n == 0 else self.part(name or str(n))), name


def event_uid(tenant: str, source: str, raw: bytes) -> str:
    """The same raw record always gets the same uid (per tenant, so tenants never collide)."""
    digest = _prefix(tenant, source).copy()
    digest.update(raw)
    return digest.hexdigest()[:32]


@functools.lru_cache(maxsize=1024)
def _prefix(tenant: str, source: str) -> "hashlib._Hash":
    """The hash of a uid's (tenant, source) prefix, to be copied (tenants and sources are few)."""
    return hashlib.sha256(f"{tenant}\x00{source}\x00".encode())


class Vendor(Protocol):
    """A vendor normalizer (one module of ``handlers.vendors``)."""

    SOURCE: str  # the name on the wire (SQS attribute ``source``) and in the CLI

    def records(self, payload: Any) -> Iterable[Any]:
        """The records inside a parsed JSON payload (API responses wrap arrays of them)."""
        ...

    def detect(self, record: Any) -> bool:
        """Whether a JSON record looks like this vendor's (for ``--source auto``)."""
        ...

    def normalize(self, record: Any, ctx: Context) -> list[Event]:
        """The normalized events of one record; raises ``Ignored`` or ``Rejected`` instead."""
        ...


class TextVendor(Vendor, Protocol):
    """A vendor that also delivers non-JSON text (CSV, W3C, CEF, syslog lines)."""

    def detect_text(self, text: str) -> bool:
        """Whether a text payload looks like this vendor's (for ``--source auto``)."""
        ...

    def parse_text(self, text: str) -> Iterator[Line]:
        """The records of a text payload, one ``Line`` each, numbered. Lines end at "\\n" (or
        "\\r\\n") only: other Unicode line breaks may be inside a field. A line it cannot read is a
        ``Line`` with a ``problem``, never an exception."""
        ...
