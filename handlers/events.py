"""The normalized event: one compact, OCSF-aligned structure for every vendor.

Names and enumerations follow OCSF 1.3 (class_uid, activity_id, severity_id, disposition_id,
metadata.tenant_uid, user.email_addr, ...) so events export to a security lake without renaming,
but only the fields coaching and rules need are kept: each Step Functions payload then holds as many
events as possible. Strings and lists are bounded; when anything had to be cut the event carries
``metadata.truncated = true``. Documented in docs/event-schema.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from handlers.ocsf import CLASSES, DISPOSITIONS, SEVERITIES, STATUSES, VERSION
from handlers.records import Context, Event

MAX_STRING = 512  # characters; longer strings are cut and the event is marked truncated
MAX_LIST = 16  # elements; longer lists are cut and the event is marked truncated

Str = Annotated[str, Field(max_length=MAX_STRING)]


class _Compact(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class Product(_Compact):
    vendor_name: Str
    name: Str


class Metadata(_Compact):
    version: Literal["1.3.0"] = VERSION
    tenant_uid: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
    product: Product
    event_code: Str | None = None  # the vendor's own event type
    uid: Str | None = None  # the vendor's own event id
    truncated: bool | None = None


class User(_Compact):
    email_addr: Str | None = None
    name: Str | None = None
    uid: Str | None = None
    domain: Str | None = None


class Location(_Compact):
    country: Str | None = None
    city: Str | None = None


class Endpoint(_Compact):
    ip: Str | None = None
    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    hostname: Str | None = None
    location: Location | None = None


class Device(_Compact):
    hostname: Str | None = None
    ip: Str | None = None
    uid: Str | None = None
    os_name: Str | None = None


class Url(_Compact):
    url_string: Str | None = None
    hostname: Str | None = None
    categories: Annotated[list[Str], Field(max_length=MAX_LIST)] | None = None


class DnsQuery(_Compact):
    hostname: Str
    type: Str | None = None


class Hash(_Compact):
    algorithm_id: Annotated[int, Field(ge=0, le=99)]  # 1 MD5, 2 SHA-1, 3 SHA-256
    value: Str


class File(_Compact):
    name: Str | None = None
    path: Str | None = None
    type: Str | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    hashes: Annotated[list[Hash], Field(max_length=MAX_LIST)] | None = None


class Process(_Compact):
    name: Str | None = None
    cmd_line: Str | None = None
    pid: Annotated[int, Field(ge=0)] | None = None


class Malware(_Compact):
    name: Str
    classification: Str | None = None


class FindingInfo(_Compact):
    title: Str | None = None
    uid: Str | None = None
    types: Annotated[list[Str], Field(max_length=MAX_LIST)] | None = None


class Policy(_Compact):
    name: Str
    uid: Str | None = None


class Email(_Compact):
    subject: Str | None = None
    from_: Str | None = Field(default=None, alias="from")
    to: Annotated[list[Str], Field(max_length=MAX_LIST)] | None = None
    uid: Str | None = None


class NormalizedEvent(_Compact):
    uid: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    time: Annotated[int, Field(ge=0)]  # epoch milliseconds, UTC (OCSF timestamp_t)
    time_dt: Str
    class_uid: int
    class_name: Str
    category_uid: int
    activity_id: Annotated[int, Field(ge=0, le=99)]
    activity_name: Str | None = None
    type_uid: int
    severity_id: Annotated[int, Field(ge=0, le=99)]
    severity: Str
    status_id: Annotated[int, Field(ge=0, le=99)] | None = None
    status: Str | None = None
    disposition_id: Annotated[int, Field(ge=0, le=99)] | None = None
    disposition: Str | None = None
    message: Str | None = None
    metadata: Metadata
    user: User | None = None
    actor: User | None = None  # who acted when that is not the coached user (an admin, a sender)
    device: Device | None = None
    src_endpoint: Endpoint | None = None
    dst_endpoint: Endpoint | None = None
    url: Url | None = None
    query: DnsQuery | None = None
    file: File | None = None
    process: Process | None = None
    malware: Annotated[list[Malware], Field(max_length=MAX_LIST)] | None = None
    finding_info: FindingInfo | None = None
    policy: Policy | None = None
    app_name: Str | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "NormalizedEvent":
        if self.class_uid not in CLASSES:
            raise ValueError(f"class_uid {self.class_uid} is not an OCSF class coachflow emits")
        if self.type_uid != self.class_uid * 100 + self.activity_id:
            raise ValueError("type_uid must be class_uid * 100 + activity_id")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def bounded(cls, data: dict[str, Any]) -> "NormalizedEvent":
        """Validate, cutting unbounded strings and lists instead of rejecting the event, and saying
        so in metadata.truncated. Cutting is rare, so it happens only when validation finds
        something too long."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            if not all(e["type"] in ("string_too_long", "too_long") for e in exc.errors()):
                raise
        cut = [False]
        data = _bound(data, cut)
        if cut[0] and isinstance(data.get("metadata"), dict):
            data["metadata"] = {**data["metadata"], "truncated": True}
        return cls.model_validate(data)


def _bound(value: Any, cut: list[bool]) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            cut[0] = True
            return value[: MAX_STRING - 1] + "…"
        return value
    if isinstance(value, dict):
        return {k: _bound(v, cut) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            cut[0] = True
            value = value[:MAX_LIST]
        return [_bound(v, cut) for v in value]
    return value


def iso_utc(time_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ms // 1000)) + f".{time_ms % 1000:03d}Z"


@dataclass(frozen=True)
class Header:
    """What one vendor record says about every event derived from it: who made it, which product,
    when it happened, and the vendor's own event type and id."""

    vendor_name: str
    product: str
    time_ms: int
    event_code: str | None = None
    vendor_uid: str | None = None


Group = dict[str, Any] | None  # an object of the event (user, device, url...), None when absent


def build(
    ctx: Context,
    header: Header,
    *,
    class_uid: int,
    activity_id: int,
    severity_id: int,
    activity_name: str | None = None,
    status_id: int | None = None,
    disposition_id: int | None = None,
    message: str | None = None,
    user: Group = None,
    actor: Group = None,
    device: Group = None,
    src_endpoint: Group = None,
    dst_endpoint: Group = None,
    url: Group = None,
    query: Group = None,
    file: Group = None,
    process: Group = None,
    malware: list[dict[str, Any]] | None = None,
    finding_info: Group = None,
    policy: Group = None,
    app_name: str | None = None,
    email: Group = None,
) -> Event:
    """The dict form of a normalized event, with the derived OCSF fields (names, type_uid, the
    metadata) filled in. Every field is named here, so a misspelt one fails type checking."""
    class_name, category_uid = CLASSES[class_uid]
    event: Event = {
        "uid": ctx.uid,
        "time": header.time_ms,
        "time_dt": iso_utc(header.time_ms),
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id,
        "severity": SEVERITIES.get(severity_id, "Other"),
        "metadata": {
            "tenant_uid": ctx.tenant,
            "product": {"vendor_name": header.vendor_name, "name": header.product},
            "event_code": header.event_code,
            "uid": header.vendor_uid,
        },
    }
    if status_id is not None:
        event["status_id"], event["status"] = status_id, STATUSES.get(status_id, "Other")
    if disposition_id is not None:
        event["disposition_id"], event["disposition"] = disposition_id, DISPOSITIONS.get(disposition_id, "Other")
    fields = {
        "message": message, "user": user, "actor": actor, "device": device, "src_endpoint": src_endpoint,
        "dst_endpoint": dst_endpoint, "url": url, "query": query, "file": file, "process": process, "malware": malware,
        "finding_info": finding_info, "policy": policy, "app_name": app_name, "email": email,
    }  # fmt: skip
    event.update((name, value) for name, value in fields.items() if value is not None)
    return event
