"""The normalized event: one compact, OCSF-aligned structure for every vendor.

Names and enumerations follow OCSF 1.3 (class_uid, activity_id, severity_id, disposition_id,
metadata.tenant_uid, user.email_addr, ...) so events export to a security lake without renaming,
but only the fields coaching and rules need are kept: each Step Functions payload then holds as many
events as possible. Strings and lists are bounded; when anything had to be cut the event carries
``metadata.truncated = true``. Documented in docs/event-schema.md.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import types
from typing import Annotated, Any, Callable, Literal, NamedTuple, Union, get_args, get_origin

import annotated_types
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

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
        problem = _inconsistency(self.class_uid, self.activity_id, self.type_uid)
        if problem is not None:
            raise ValueError(problem)
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


def _inconsistency(class_uid: int, activity_id: int, type_uid: int) -> str | None:
    """What is wrong with an event's class and type, across fields (the model's own check, which the
    fast path below makes too)."""
    if class_uid not in CLASSES:
        return f"class_uid {class_uid} is not an OCSF class coachflow emits"
    if type_uid != class_uid * 100 + activity_id:
        return "type_uid must be class_uid * 100 + activity_id"
    return None


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


# -- the fast path: the model's guarantees, checked without building the model -----------------------
#
# Building the model (a Python object per group) and dumping it costs more than mapping the record
# did. For the common event every value already has the right type and fits its bounds, so
# ``event_json`` checks exactly what the model would check, with a plan compiled once per model from
# its own fields (types, strictness, bounds, patterns, required fields, defaults, aliases) into one
# plain function, plus the model's cross-field check (``_inconsistency``), and serializes the dict
# in the model's field order with orjson: for what the plans let through (strings, ints within 64
# bits, bools, lists and objects of them) it writes the bytes pydantic's dump writes, in a third
# of the time. An event whose only fault is a string or list too long goes to a second plan that
# cuts them as ``bounded`` does (``_cut``). Whatever the plans cannot vouch for (a wrong type, a
# missing field, an unknown key, a subclass, text that is not UTF-8) goes to the model, which
# rejects or cuts it exactly as before: the fast path only accepts what the model accepts, and
# gives the same bytes (tests/test_event_fast_path.py compares the two).


class _NeedsModel(Exception):
    """A value the fast path cannot vouch for: the model decides."""


_INT64 = (-(2**63), 2**63 - 1)  # wider ints are valid, but rare enough to leave to the model
# The model validators the fast path makes too (``event_json`` calls ``_inconsistency``).
_MIRRORED_VALIDATORS = {"NormalizedEvent": {"_consistent"}}

# What a plan checks of one value: ("str", max_length, pattern), ("int", low, high), ("bool",),
# ("literal", choices), ("list", item, max_length), ("model", class).
_Spec = tuple[Any, ...]


def _constraints(items: list[Any], where: str) -> dict[str, Any]:
    """The bounds a field's metadata sets; a kind of constraint the plans do not check is a
    programming error, raised when this module is imported."""
    found: dict[str, Any] = {}
    for item in items:
        if isinstance(item, FieldInfo):  # Annotated[T, Field(...)] inside a union or a list
            found.update(_constraints(item.metadata, where))
        elif isinstance(item, annotated_types.MaxLen):
            found["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge):
            found["ge"] = item.ge
        elif isinstance(item, annotated_types.Le):
            found["le"] = item.le
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            found["pattern"] = vars(item)["pattern"]
        else:
            raise TypeError(f"{where}: the fast path does not check {item!r}")
    return found


def _spec(annotation: Any, metadata: list[Any], where: str) -> tuple[_Spec, bool]:
    """(what to check of a field's value, whether it may be None) from its annotation and metadata."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        others = [a for a in get_args(annotation) if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"{where}: the fast path checks Optional unions only, not {annotation}")
        return _spec(others[0], metadata, where)[0], True
    if origin is Annotated:
        inner, *more = get_args(annotation)
        return _spec(inner, [*metadata, *more], where)
    bounds = _constraints(metadata, where)
    allowed: set[str] = set()
    spec: _Spec
    if annotation is str:
        spec, allowed = ("str", bounds.get("max_length", sys.maxsize), bounds.get("pattern")), {"max_length", "pattern"}
    elif annotation is int:
        spec, allowed = ("int", max(bounds.get("ge", _INT64[0]), _INT64[0]), min(bounds.get("le", _INT64[1]), _INT64[1])), {"ge", "le"}
    elif annotation is bool:
        spec = ("bool",)
    elif origin is Literal:
        spec = ("literal", get_args(annotation))
    elif origin is list:
        (item,) = get_args(annotation)
        spec, allowed = ("list", _spec(item, [], where)[0], bounds.get("max_length", sys.maxsize)), {"max_length"}
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        spec = ("model", annotation)
    else:
        raise TypeError(f"{where}: the fast path does not check {annotation!r}")
    if set(bounds) - allowed:
        raise TypeError(f"{where}: the fast path does not check {sorted(set(bounds) - allowed)} on {annotation!r}")
    return spec, False


class _Emitter:
    """Writes the plans as Python source: one function per model, a few lines per field, no call per
    value (this is what makes them cheaper than building the model).

    A cutting emitter writes the plans of ``bounded``'s second try instead: each string and list
    is first cut as ``_bound`` cuts it (setting ``cut[0]``), then checked as usual. Only strings and
    lists are cut: a value of another kind that ``_bound`` would cut (a long string where an int is
    due) is refused either way."""

    def __init__(self, cutting: bool = False) -> None:
        self.names: dict[str, Any] = {"_NeedsModel": _NeedsModel, "_ABSENT": object()}
        self.functions: dict[type[BaseModel], str] = {}
        self.source: list[str] = []
        self.cutting = cutting

    def call(self, model: type[BaseModel], var: str) -> str:
        """An expression: the plan of ``model`` applied to ``var``."""
        return f"{self.model(model)}({var}, cut)" if self.cutting else f"{self.model(model)}({var})"

    def cuts(self, kind: str, var: str, indent: str) -> list[str]:
        """Lines that cut ``var`` as ``_bound`` does, if it is a string or list too long for it."""
        if not self.cutting or kind not in ("str", "list"):
            return []
        if kind == "str":
            test, shorter = f"type({var}) is str and len({var}) > {MAX_STRING}", f"{var}[: {MAX_STRING - 1}] + '…'"
        else:
            test, shorter = f"type({var}) is list and len({var}) > {MAX_LIST}", f"{var}[:{MAX_LIST}]"
        return [f"{indent}if {test}:", f"{indent}    {var} = {shorter}", f"{indent}    cut[0] = True"]

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.names)}"
        self.names[name] = value
        return name

    def check(self, spec: _Spec, var: str, indent: str, depth: int = 0) -> list[str]:
        """Lines that raise _NeedsModel unless ``var`` is as the model accepts it unchanged; model
        values are replaced by their plan's output."""
        fail = f"{indent}    raise _NeedsModel"
        kind = spec[0]
        cuts = self.cuts(kind, var, indent)
        if kind == "str":
            _, longest, pattern = spec
            # fullmatch: Python's "$" also matches before a final newline, the Rust regex's does not
            bound = f" or len({var}) > {longest}" if longest < sys.maxsize else ""
            regex = f" or not {self.constant(re.compile(pattern))}.fullmatch({var})" if pattern is not None else ""
            return [*cuts, f"{indent}if type({var}) is not str{bound}{regex}:", fail]
        if kind == "int":  # strict: a bool is no int
            return [f"{indent}if type({var}) is not int or not {spec[1]} <= {var} <= {spec[2]}:", fail]
        if kind == "bool":
            return [f"{indent}if type({var}) is not bool:", fail]
        if kind == "literal":
            choices = self.constant(spec[1])
            return [f"{indent}if not any(type({var}) is type(c) and {var} == c for c in {choices}):", fail]
        if kind == "list":
            _, item, longest = spec
            bound = f" or len({var}) > {longest}" if longest < sys.maxsize else ""
            lines = [*cuts, f"{indent}if type({var}) is not list{bound}:", fail]
            if item[0] == "model":
                return [*lines, f"{indent}{var} = [{self.call(item[1], 'x')} for x in {var}]"]
            element = f"x{depth}"
            checks = self.check(item, element, indent + "    ", depth + 1)
            if not self.cutting:
                return [*lines, f"{indent}for {element} in {var}:", *checks]
            # The items may be cut: a new list of them (the input stays as it was).
            items = f"items{depth}"
            loop = [f"{indent}{items} = []", f"{indent}for {element} in {var}:", *checks, f"{indent}    {items}.append({element})"]
            return [*lines, *loop, f"{indent}{var} = {items}"]
        if kind == "model":
            return [f"{indent}{var} = {self.call(spec[1], var)}"]
        raise AssertionError(kind)

    def model(self, model: type[BaseModel]) -> str:
        """The name of the plan of ``model``, written if it is not yet."""
        if model in self.functions:
            return self.functions[model]
        config, decorators = model.model_config, model.__pydantic_decorators__
        if config.get("extra") != "forbid" or config.get("strict") is not True or config.get("alias_generator") is not None:
            raise TypeError(f"{model.__name__}: the fast path assumes strict models that forbid extra keys")
        validators = {**decorators.validators, **decorators.field_validators, **decorators.root_validators, **decorators.model_validators}
        if set(validators) != _MIRRORED_VALIDATORS.get(model.__name__, set()) or (
            decorators.field_serializers or decorators.model_serializers or decorators.computed_fields
        ):
            raise TypeError(f"{model.__name__}: the fast path does not know its validators or serializers")
        name = self.functions[model] = f"_{'cut' if self.cutting else 'plan'}_{model.__name__}"
        keys = self.constant(frozenset(info.alias or field for field, info in model.model_fields.items()))
        # An aliased field given by its name ("from_", populate_by_name) is left to the model: not in keys.
        signature = f"def {name}(d, cut):" if self.cutting else f"def {name}(d):"
        lines = [signature, f"    if type(d) is not dict or not {keys}.issuperset(d):", "        raise _NeedsModel", "    out = {}"]
        for field, info in model.model_fields.items():
            where = f"{model.__name__}.{field}"
            if info.default_factory is not None or info.exclude or info.validation_alias not in (None, info.alias):
                raise TypeError(f"{where}: the fast path does not know this field's settings")
            spec, nullable = _spec(info.annotation, info.metadata, where)
            key = repr(info.alias or field)
            required = info.is_required()
            default = None if required else info.default
            if nullable and default is None and not required:  # absent, None: both left out of the dump
                lines += [f"    v = d.get({key})", "    if v is not None:", *self.check(spec, "v", "        "), f"        out[{key}] = v"]
                continue
            if required and not nullable:  # absent, None: both refused
                lines += [f"    v = d.get({key})", "    if v is None:", "        raise _NeedsModel"]
                lines += [*self.check(spec, "v", "    "), f"    out[{key}] = v"]
                continue
            lines += [f"    v = d.get({key}, _ABSENT)", "    if v is _ABSENT:"]
            if required:
                lines += ["        raise _NeedsModel"]
            elif default is not None:  # a default is dumped (metadata.version)
                lines += [f"        out[{key}] = {self.constant(default)}"]
            else:
                lines += ["        pass"]
            lines += ["    elif v is None:", "        raise _NeedsModel" if not nullable else "        pass", "    else:"]
            lines += [*self.check(spec, "v", "        "), f"        out[{key}] = v"]
        self.source += [*lines, "    return out", ""]
        return name

    def compile(self, model: type[BaseModel]) -> Callable[..., dict[str, Any]]:
        self.model(model)  # written, with every plan it calls
        exec(compile("\n".join(self.source), f"<plans of {model.__name__}>", "exec"), self.names)  # noqa: S102
        return self.plan(model)

    def plan(self, model: type[BaseModel]) -> Callable[..., dict[str, Any]]:
        """The compiled plan of ``model`` (``compile`` wrote it, or the plan of a model holding it)."""
        plan: Callable[..., dict[str, Any]] = self.names[self.functions[model]]
        return plan


_PLANS = _Emitter()
_EVENT_PLAN = _PLANS.compile(NormalizedEvent)
_METADATA_PLAN = _PLANS.plan(Metadata)
_CUTTING = _Emitter(cutting=True)
_EVENT_CUT_PLAN = _CUTTING.compile(NormalizedEvent)


def event_json(data: dict[str, Any]) -> tuple[str, str, int]:
    """(the event's JSON, its uid, its time) exactly as ``NormalizedEvent.bounded(data)`` and
    ``to_json`` give them; raises the model's ValidationError for an event it rejects."""
    try:
        plain = _checked(data)
        return orjson.dumps(plain).decode(), plain["uid"], plain["time"]
    except (_NeedsModel, orjson.JSONEncodeError):  # (the latter: a lone surrogate, which UTF-8 cannot hold)
        pass
    model = NormalizedEvent.bounded(data)
    return model.to_json(), model.uid, model.time


def _checked(data: dict[str, Any]) -> dict[str, Any]:
    """The event as the model dumps it; raises _NeedsModel for whatever the model must decide."""
    try:
        plain = _EVENT_PLAN(data)
    except _NeedsModel:
        plain = _cut(data)
    if _inconsistency(plain["class_uid"], plain["activity_id"], plain["type_uid"]) is not None:
        raise _NeedsModel
    return plain


def _cut(data: dict[str, Any]) -> dict[str, Any]:
    """What ``bounded`` gives an event whose only faults are values too long (a command line, a
    long URL: every EDR feed has them): cut by the cutting plan, marked truncated, no model built.
    Any other fault raises _NeedsModel, and the model refuses the event as before."""
    cut = [False]
    plain = _EVENT_CUT_PLAN(data, cut)
    if not cut[0]:  # (the cutting plan refuses whatever the plain plan refused, unless it cut something)
        raise _NeedsModel
    plain["metadata"] = _METADATA_PLAN({**plain["metadata"], "truncated": True})  # in the model's field order
    return plain


def iso_utc(time_ms: int) -> str:
    """The time as OCSF's datetime_t ("2024-03-04T11:17:25.123Z")."""
    # Every event needs one: the date is formatted once per day (events come in days), the time of
    # day by arithmetic, which is half the cost of strftime.
    days, of_day = divmod(time_ms, 86_400_000)
    seconds, milliseconds = divmod(of_day, 1000)
    return "%s%02d:%02d:%02d.%03dZ" % (_date(days), seconds // 3600, seconds // 60 % 60, seconds % 60, milliseconds)


@functools.lru_cache(maxsize=1024)
def _date(days: int) -> str:
    """The date part of a datetime_t ("2024-03-04T"), ``days`` days after 1970-01-01."""
    return time.strftime("%Y-%m-%dT", time.gmtime(days * 86_400))


class Header(NamedTuple):
    """What one vendor record says about every event derived from it: who made it, which product,
    when it happened, and the vendor's own event type and id. (A NamedTuple, not a frozen
    dataclass: as immutable, and a third of the cost to build.)"""

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
    # The optional fields, those given: spelt out rather than looped over (this runs for every event).
    if message is not None:
        event["message"] = message
    if user is not None:
        event["user"] = user
    if actor is not None:
        event["actor"] = actor
    if device is not None:
        event["device"] = device
    if src_endpoint is not None:
        event["src_endpoint"] = src_endpoint
    if dst_endpoint is not None:
        event["dst_endpoint"] = dst_endpoint
    if url is not None:
        event["url"] = url
    if query is not None:
        event["query"] = query
    if file is not None:
        event["file"] = file
    if process is not None:
        event["process"] = process
    if malware is not None:
        event["malware"] = malware
    if finding_info is not None:
        event["finding_info"] = finding_info
    if policy is not None:
        event["policy"] = policy
    if app_name is not None:
        event["app_name"] = app_name
    if email is not None:
        event["email"] = email
    return event
