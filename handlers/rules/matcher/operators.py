"""The kinds of operator a pattern's value array may hold, and how the index treats each one."""

from __future__ import annotations

import enum
from typing import NamedTuple


class Anchor(NamedTuple):
    """How a kind serves as a branch's anchor (the clause the index looks the branch up by).

    ``cost``: the expected candidates per index key, relative to an exact value; a branch is
    anchored on the clause whose keys, weighted so and counted across the branches that share them,
    promise the fewest candidates. ``rank``: the tie-break, lower is more selective. ``certain``: a
    hit on the anchor's key proves the clause, so it need not be checked again."""

    rank: int
    cost: int
    certain: bool


class Kind(enum.Enum):
    """One element of a field's value array: a literal, or the operator it names.

    ``anchor`` is None for the kinds that cannot anchor a branch: they are satisfied by a missing
    field (``exists: false``) or by values no index key names (``anything-but``)."""

    EXACT = "exact", Anchor(rank=0, cost=1, certain=True)
    EQUALS_IGNORE_CASE = "eqic", Anchor(rank=1, cost=1, certain=True)
    PREFIX = "prefix", Anchor(rank=2, cost=2, certain=True)
    SUFFIX = "suffix", Anchor(rank=2, cost=2, certain=True)
    PREFIX_IGNORE_CASE = "prefix_ic", Anchor(rank=3, cost=2, certain=True)
    SUFFIX_IGNORE_CASE = "suffix_ic", Anchor(rank=3, cost=2, certain=True)
    CIDR = "cidr", Anchor(rank=4, cost=2, certain=True)
    WILDCARD = "wildcard", Anchor(rank=5, cost=3, certain=False)  # the index looks up only the literal prefix or suffix
    NUMERIC = "numeric", Anchor(rank=6, cost=4, certain=True)
    EXISTS = "exists", Anchor(rank=9, cost=50, certain=True)
    ABSENT = "absent", None
    ANYTHING_BUT = "anything_but", None

    def __init__(self, label: str, anchor: Anchor | None) -> None:
        self.label = label
        self.anchor = anchor

    def __repr__(self) -> str:
        return f"Kind.{self.name}"
