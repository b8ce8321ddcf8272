"""Checks of a valid rule against what the pipeline can give it, run by ``rules validate`` and
``rules push`` (through cli/packs.py): pattern fields and threshold/suppress keys the normalized event
can hold (cli/schema.py), templates the renderer can fill (handlers/notify.py), the vendors of raw
test payloads.

A layer on top of the rule model: the matcher stays generic (any field names, any events), and a
stored rule is never refused at evaluation time.
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple

from cli import schema
from handlers import vendors
from handlers.ingest import AUTO
from handlers.notify import PLACEHOLDERS
from handlers.rules.model import Rule

# A placeholder is "{" then anything but braces then "}"; any other brace is unbalanced.
_BRACES = re.compile(r"\{([^{}]*)\}|[{}]")


class Problem(NamedTuple):
    place: tuple[str | int, ...]  # where in the rule document: ("match", "user", "email_addr"), ("actions", 0, "template")
    message: str


def _unknown(path: str) -> str:
    near = schema.nearest(path)
    return f"the normalized event has no field '{path}'" + (f"; did you mean '{near}'?" if near else "")


def pattern_problems(rule: Rule) -> list[Problem]:
    problems: list[Problem] = []
    paths = dict.fromkeys(clause.path for branch in rule.pattern.branches for clause in branch)
    for parts in paths:
        path = ".".join(parts)
        dotted = next((part for part in parts if "." in part), None)
        if dotted is not None:  # the matcher reads a key "a.b" literally, never b inside a
            nested = dotted.replace(".", ": {", 1) + ": [...]}"
            problems.append(Problem(("match", *parts), f"a field name holds no '.'; nest the fields instead ({nested})"))
            continue
        found = schema.field(path)
        if found is None:
            problems.append(Problem(("match", *parts), _unknown(path)))
        elif found.is_object and not found.free:
            fields = ", ".join(schema.children(path))
            problems.append(
                Problem(("match", *parts), f"'{path}' is an object, never a value a pattern compares; match one of its fields: {fields}")
            )
    return problems


def key_problems(rule: Rule) -> list[Problem]:
    """A key names a value, or a person object (its identity); state.value_at reads no further than a
    list, so a key below a list of objects would never have a value."""
    problems = []
    for name, spec in (("threshold", rule.threshold), ("suppress", rule.suppress)):
        if spec is None:
            continue
        found = schema.field(spec.key)
        if found is None:
            problems.append(Problem((name, "key"), _unknown(spec.key)))
            continue
        parts = spec.key.split(".")
        listed = [".".join(parts[:n]) for n in range(1, len(parts)) if (above := schema.field(".".join(parts[:n]))) and above.through_list]
        if listed:
            problems.append(Problem((name, "key"), f"'{spec.key}' is below the list '{listed[0]}': a key must be one value per event"))
    return problems


def template_problems(template: str) -> list[str]:
    """Every brace of a template that ``notify.render`` would not replace."""
    problems = []
    for m in _BRACES.finditer(template):
        name = m.group(1)
        if name is None:
            problems.append(f"unbalanced '{m.group(0)}' at character {m.start() + 1}")
        elif name not in PLACEHOLDERS:
            near = difflib.get_close_matches(name, sorted(PLACEHOLDERS), n=1, cutoff=0.6)
            hint = f"did you mean '{{{near[0]}}}'?" if near else f"use one of {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
            problems.append(f"unknown placeholder '{m.group(0)[:60]}'; {hint}")
    return problems


def source_problems(rule: Rule) -> list[Problem]:
    """A raw test's payload is normalized as from a vendor the pipeline knows (or auto)."""
    sources = [*vendors.names(), AUTO]
    return [
        Problem(("tests", i, "source"), f"unknown source {test.source!r}; one of {', '.join(sources)}")
        for i, test in enumerate(rule.tests)
        if test.source is not None and test.source not in sources
    ]


def rule_problems(rule: Rule) -> list[Problem]:
    """Everything wrong with a valid rule, each with its place in the rule."""
    problems = pattern_problems(rule) + key_problems(rule) + source_problems(rule)
    for i, action in enumerate(rule.actions):
        if action.template is not None:
            problems += [Problem(("actions", i, "template"), p) for p in template_problems(action.template)]
    return problems
