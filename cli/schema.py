"""The field paths a normalized event can hold, derived from its pydantic models (handlers/events.py),
so rule checks stay true when the event changes.

Paths use the names events are written with (aliases: ``email.from``) and go through lists
(``malware.name``: malware is a list of objects). A free-form object (``dict[str, Any]``) accepts any
path below it. Tooling only: the matcher itself stays generic, and the Lambda functions never refuse
a stored rule over its field names.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from handlers.events import NormalizedEvent


@dataclass(frozen=True)
class Field:
    path: str
    is_object: bool  # an object (its fields are the paths below it), not a value a pattern can compare
    through_list: bool  # reached through a list of objects (or is one)
    free: bool = False  # a free-form object: any path below it is valid


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside Annotated, Optional and list, and whether a list was crossed."""
    in_list = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            (annotation,) = [a for a in get_args(annotation) if a is not type(None)]  # the models use X | None only
        elif origin is list:
            annotation, in_list = get_args(annotation)[0], True
        else:
            return annotation, in_list


def model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model of the object at ``loc`` (field names and list indexes) below ``model``, if one."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list: _unwrap already stepped into its element type
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current, _ = _unwrap(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _walk(model: type[BaseModel], prefix: str, through_list: bool, out: dict[str, Field]) -> None:
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        inner, in_list = _unwrap(info.annotation)
        listed = through_list or in_list
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            out[path] = Field(path, is_object=True, through_list=listed)
            _walk(inner, path + ".", listed, out)
        elif inner is dict or get_origin(inner) is dict:
            out[path] = Field(path, is_object=True, through_list=listed, free=True)
        else:
            out[path] = Field(path, is_object=False, through_list=listed)


def fields_of(model: type[BaseModel]) -> dict[str, Field]:
    """Every path of a model's objects, by dotted path."""
    out: dict[str, Field] = {}
    _walk(model, "", False, out)
    return out


EVENT_FIELDS = fields_of(NormalizedEvent)


def field(path: str, fields: dict[str, Field] = EVENT_FIELDS) -> Field | None:
    """The field at ``path`` (dotted), or None when the event can never hold it."""
    if path in fields:
        return fields[path]
    parts = path.split(".")
    for n in range(len(parts) - 1, 0, -1):
        above = fields.get(".".join(parts[:n]))
        if above is not None and above.free:
            return Field(path, is_object=False, through_list=above.through_list, free=True)
    return None


def nearest(path: str, fields: dict[str, Field] = EVENT_FIELDS) -> str | None:
    """The valid path closest to a misspelt one, for "did you mean"."""
    close = difflib.get_close_matches(path, list(fields), n=1, cutoff=0.6)
    return close[0] if close else None


def children(path: str, fields: dict[str, Field] = EVENT_FIELDS) -> list[str]:
    """The names of an object's fields."""
    return [p.rsplit(".", 1)[1] for p in fields if p.startswith(path + ".") and p.count(".") == path.count(".") + 1]
