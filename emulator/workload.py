"""The soak's workload: raw vendor messages built from real payloads, and what each must become.

Templates are the repository's example events (``examples/events``) and, when present, the
real-sample corpus. Each message is one template made new: its people become users of the message's
tenant (``user17@globex.example``), its timestamps move by up to a month, so every record is a
different event (a different uid). About ``hostile_share`` of the records are hostile: truncated or
broken JSON, a broken line inside a feed, a record over the size limit, wrong types, deep nesting,
an unknown source, no tenant, and a sender that is not the tenant's registered producer.

For every message the expected outcome of every record is computed with the pipeline's own pure core
(``handlers.ingest``), once, before anything is sent; the soak then checks that the pipeline gave
each record that outcome, exactly once. Everything is derived from the seed: the same arguments give
the same messages.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers import vendors
from handlers.ingest import AUTO, normalize_payload, reject_payload
from handlers.outcomes import NormalizedOutcome, Outcome, RejectReason

TENANT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
USERS_PER_TENANT = 200
SQS_MESSAGE_BYTES = 262_144
STRANGER = "AKIDSOAKSTRANGER"  # sends for tenants it is not registered for

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DATETIME = re.compile(r"\b(\d{4})([-/])(\d{2})\2(\d{2})([T ])(\d{2}):(\d{2}):(\d{2})")
_EPOCH_MS = re.compile(r"\b1[5-7]\d{11}\b")


def tenants(count: int) -> list[str]:
    return [TENANT_NAMES[n] if n < len(TENANT_NAMES) else f"tenant-{n:02d}" for n in range(count)]


def producer(tenant: str) -> str:
    """The access key a tenant's integration sends with (the embedded AWS reports it as SenderId)."""
    return "AKIDSOAK" + re.sub(r"[^A-Z0-9]", "", tenant.upper())


@dataclass(frozen=True)
class Template:
    name: str
    source: str  # the vendor, or auto
    body: str


@dataclass(frozen=True)
class Expected:
    kind: str
    reason: str | None
    uid: str | None = None
    event: dict[str, Any] | None = None


@dataclass
class Message:
    tenant: str | None  # the tenant the envelope names (None: no tenant attribute)
    source: str
    body: str
    sender: str
    template: str
    hostile: str | None  # which kind of hostile message, None for a clean one
    expected: list[Expected]
    message_id: str | None = None  # SQS's id, once sent


@dataclass
class Workload:
    messages: list[Message] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    discarded: int = 0  # candidate messages dropped: a record collided with an earlier one's uid

    @property
    def records(self) -> int:
        return sum(len(m.expected) for m in self.messages)

    @property
    def hostile_records(self) -> int:
        return sum(len(m.expected) for m in self.messages if m.hostile)


def templates(examples: Path, corpus: Path | None) -> list[Template]:
    """Every payload usable as a template: examples (sent with their vendor's name and as auto) and
    corpus samples (auto). A payload that is not clean (any record rejected) is no template."""
    found: list[Template] = []
    names = set(vendors.names())
    for root, named in ((examples, True), (corpus, False)):
        if root is None or not root.is_dir():
            continue
        for path in sorted(root.glob("*/*")):
            if not path.is_file() or path.suffix not in (".json", ".log"):
                continue
            body = path.read_text(encoding="utf-8")
            vendor = path.parent.name
            sources = [vendor, AUTO] if named and vendor in names else [AUTO]
            for source in sources:
                outcomes = normalize_payload(body, source, "acme", 0)
                if outcomes and all(o.kind != "rejected" for o in outcomes):
                    found.append(Template(f"{root.name}/{vendor}/{path.name}", source, body))
    return found


def _expected(outcomes: list[Outcome]) -> list[Expected]:
    result = []
    for outcome in outcomes:
        if isinstance(outcome, NormalizedOutcome):
            result.append(Expected("normalized", None, outcome.uid, outcome.event))
        else:
            result.append(Expected(outcome.kind, str(outcome.reason)))
    return result


class _Maker:
    def __init__(self, pool: list[Template], names: list[str], rng: random.Random) -> None:
        self.pool = pool
        self.tenants = names
        self.rng = rng

    def renew(self, body: str, tenant: str) -> str:
        """The template as a new event: its people are this tenant's users, its times moved."""
        people: dict[str, str] = {}

        def person(found: re.Match[str]) -> str:
            if found.group(0) not in people:
                people[found.group(0)] = f"user{self.rng.randrange(USERS_PER_TENANT)}@{tenant}.example"
            return people[found.group(0)]

        shift = dt.timedelta(seconds=self.rng.randrange(30 * 86400))

        def moved(found: re.Match[str]) -> str:
            y, sep, m, d, t, hh, mm, ss = found.groups()
            try:
                when = dt.datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss)) - shift
            except ValueError:
                return found.group(0)
            return when.strftime(f"%Y{sep}%m{sep}%d{t}%H:%M:%S")

        body = _EMAIL.sub(person, body)
        body = _DATETIME.sub(moved, body)
        return _EPOCH_MS.sub(lambda f: str(int(f.group(0)) - int(shift.total_seconds() * 1000)), body)

    def clean(self) -> Message:
        template = self.rng.choice(self.pool)
        tenant = self.rng.choice(self.tenants)
        body = self.renew(template.body, tenant)
        return Message(tenant, template.source, body, producer(tenant), template.name, None, [])

    def hostile(self) -> Message:
        kind = self.rng.choice(HOSTILE_KINDS)
        template = self.rng.choice(self.pool)
        tenant = self.rng.choice(self.tenants)
        body = self.renew(template.body, tenant)
        source, sender = template.source, producer(tenant)
        envelope_tenant: str | None = tenant
        if kind == "truncated":
            body = body[: max(1, len(body) // 2)]
        elif kind == "not_json":
            # garbage, but garbage a producer can send: SQS refuses control characters such as \x01
            body = "\x7f\ufffd this is not an event " + "".join(self.rng.choice("{}[]:,\"'\\") for _ in range(40))
        elif kind == "broken_line":
            lines = [json.dumps({"event": n, "payload": body[:200]}) for n in range(2)]
            body = "\n".join([self.renew(self.rng.choice(self.pool).body, tenant).replace("\n", " "), '{"broken": ', *lines])
        elif kind == "oversized":
            # over the record limit, and over what a dead letter carries: it waits in the claims bucket
            body = json.dumps(
                {"eventType": "user.session.start", "padding": "x" * 210_000, "actor": {"alternateId": f"user1@{tenant}.example"}}
            )
        elif kind == "wrong_types":
            body = json.dumps(_wrong_types(_json_or(body), self.rng))
        elif kind == "deep_nesting":
            body = "[" * 5000 + "]" * 5000
        elif kind == "unknown_source":
            source = "nosuchvendor"
        elif kind == "no_tenant":
            envelope_tenant = None
        elif kind == "stranger":
            sender = STRANGER
        elif kind == "empty_page":
            body = "[]"
        return Message(envelope_tenant, source, body, sender, template.name, kind, [])


HOSTILE_KINDS = ("truncated", "not_json", "broken_line", "oversized", "wrong_types", "deep_nesting", "unknown_source", "no_tenant",
                 "stranger", "empty_page")  # fmt: skip


def _json_or(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return {"raw": body}


def _wrong_types(value: Any, rng: random.Random) -> Any:
    """Every string that looks like a time or an address becomes a number, an object or a list."""
    if isinstance(value, dict):
        return {k: _wrong_types(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_wrong_types(v, rng) for v in value]
    if isinstance(value, str) and (_DATETIME.search(value) or "@" in value):
        return rng.choice([12345, {"unexpected": [value]}, [value, value], True, -1.5e308])
    return value


def expected_outcomes(message: Message) -> list[Expected]:
    """What the pipeline must make of the message's records (its own pure core, run here)."""
    if message.sender == STRANGER and message.tenant:
        detail = f"sender {message.sender!r} is not a registered producer of tenant {message.tenant}"
        return _expected(reject_payload(message.body, message.source, RejectReason.UNREGISTERED_PRODUCER, detail))
    return _expected(normalize_payload(message.body, message.source, message.tenant, 0))


def _envelope_bytes(message: Message) -> int:
    return len(message.body.encode("utf-8")) + 64  # the body and its two attributes, generously


def build(records: int, tenant_count: int, seed: int, examples: Path, corpus: Path | None, hostile_share: float = 0.02) -> Workload:
    """Messages holding at least ``records`` records, about ``hostile_share`` of them hostile."""
    rng = random.Random(seed)
    pool = templates(examples, corpus)
    if not pool:
        raise ValueError(f"no usable templates under {examples}")
    names = tenants(tenant_count)
    maker = _Maker(pool, names, rng)
    workload = Workload(tenants=names)
    uids: set[str] = set()
    clean_records = hostile_records = 0
    while clean_records + hostile_records < records:
        want_hostile = hostile_records < hostile_share * (clean_records + hostile_records + 1)
        message = maker.hostile() if want_hostile else maker.clean()
        if _envelope_bytes(message) > SQS_MESSAGE_BYTES:
            continue
        message.expected = expected_outcomes(message)
        fresh = [e.uid for e in message.expected if e.uid is not None]
        if len(set(fresh)) != len(fresh) or uids.intersection(fresh) or not message.expected:
            workload.discarded += 1  # the same event twice: it would be evaluated once, counted twice
            continue
        if not message.hostile and any(e.kind == "rejected" for e in message.expected):
            workload.discarded += 1  # renewing broke it: only hostile messages may hold rejects
            continue
        uids.update(fresh)
        workload.messages.append(message)
        if message.hostile:
            hostile_records += len(message.expected)
        else:
            clean_records += len(message.expected)
    return workload


def by_sender(messages: list[Message]) -> Iterator[tuple[str, list[Message]]]:
    senders: dict[str, list[Message]] = {}
    for message in messages:
        senders.setdefault(message.sender, []).append(message)
    yield from senders.items()
