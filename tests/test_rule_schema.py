"""cli/schema.py: the field paths of the normalized event, derived from its pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cli import schema
from emulator.stack import EXAMPLES
from handlers.events import NormalizedEvent
from handlers.ingest import normalize_payload
from handlers.outcomes import NormalizedOutcome
from handlers.rules.model import Action, Rule, Threshold


def test_every_field_of_the_event_model_is_a_path():
    assert set(NormalizedEvent.model_fields) <= set(schema.EVENT_FIELDS)
    assert schema.field("disposition") == schema.Field("disposition", is_object=False, through_list=False)
    assert schema.field("metadata.product.vendor_name") is not None and schema.field("src_endpoint.location.city") is not None


def test_objects_lists_and_aliases():
    user = schema.field("user")
    assert user is not None and user.is_object and not user.through_list
    assert schema.children("user") == ["email_addr", "name", "uid", "domain"]
    # through a list of objects, as the matcher flattens them
    malware_name = schema.field("malware.name")
    assert malware_name is not None and malware_name.through_list and not malware_name.is_object
    assert schema.field("file.hashes.value") is not None
    categories = schema.field("url.categories")  # a list of values is a value a pattern compares
    assert categories is not None and not categories.is_object and categories.through_list
    # the name events are written with, not the Python attribute
    assert schema.field("email.from") is not None and schema.field("email.from_") is None


def test_paths_the_event_can_never_hold():
    for path in ("dispositon", "user.mail", "malware.name.x", "url.categories.x", "from", ""):
        assert schema.field(path) is None, path
    assert schema.nearest("dispositon") == "disposition"
    assert schema.nearest("user.emial_addr") == "user.email_addr"
    assert schema.nearest("zzzzzz") is None


class _Inner(BaseModel):
    labels: dict[str, Any] | None = None


class _Free(BaseModel):
    inner: list[_Inner]
    extra: dict[str, Any]


def test_a_free_form_object_accepts_any_path_below_it():
    fields = schema.fields_of(_Free)
    assert schema.field("extra.anything.below", fields) == schema.Field("extra.anything.below", False, False, free=True)
    below_list = schema.field("inner.labels.team", fields)
    assert below_list is not None and below_list.free and below_list.through_list
    assert schema.field("inner.other", fields) is None


def test_model_at_follows_fields_and_list_indexes():
    assert schema.model_at(Rule, ()) is Rule
    assert schema.model_at(Rule, ("threshold",)) is Threshold
    assert schema.model_at(Rule, ("actions", 3)) is Action
    assert schema.model_at(Rule, ("match",)) is None and schema.model_at(Rule, ("nope",)) is None


def _paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, list):
        return {p for element in node for p in _paths(element, prefix)}
    if isinstance(node, dict):
        return {p for key, value in node.items() for p in {prefix + key} | _paths(value, prefix + key + ".")}
    return set()


def test_every_path_of_every_example_event_is_in_the_schema():
    # The other direction: what the normalizers really write is what the schema says they can.
    seen: set[str] = set()
    for path in sorted(EXAMPLES.glob("*/*")):
        if path.name == "INDEX.md":
            continue
        for outcome in normalize_payload(path.read_text(encoding="utf-8"), path.parent.name, "acme"):
            if isinstance(outcome, NormalizedOutcome):
                seen |= _paths(outcome.event)
    assert seen and not {p for p in seen if schema.field(p) is None}
