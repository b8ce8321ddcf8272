"""The rule document: data, validated by pydantic, never code we execute.

Only ``rule_id`` and ``match`` are required. Errors name the offending path
(``rules[3].match.user.email_addr[0].prefix: expected a string``). Validating a rule parses its
pattern once; the rule keeps it (``Rule.pattern``) for ``compile_rules``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticSerializationError

from handlers.durations import Duration
from handlers.rules.matcher import Pattern, PatternError, parse_pattern

FieldPath = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=128)]
RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Threshold(_Strict):
    """Fire when ``count`` matching events with the same ``key`` occur within ``window``."""

    count: Annotated[int, Field(ge=2, le=10_000)]
    window: Duration
    key: FieldPath = "user"  # the coached person: email, else user id, else name


class Suppress(_Strict):
    """After firing for a key, stay quiet for ``duration`` (the coaching cool-down)."""

    duration: Duration
    key: FieldPath = "user"


class Action(_Strict):
    """What coaching to trigger. ``template`` may use {user}, {rule}, {title}, {event.<path>}.
    ``channels``: where its message goes (default: the tenant's default channels,
    ``handlers.channels``)."""

    type: Literal["notify", "assign_training", "escalate"] = "notify"
    template: Annotated[str, Field(max_length=2000)] | None = None
    training_id: Annotated[str, Field(max_length=128)] | None = None
    escalate_to: Annotated[str, Field(max_length=256)] | None = None
    channels: Annotated[list[Literal["email", "slack", "teams", "webhook"]], Field(min_length=1, max_length=4)] | None = None


class RuleTest(_Strict):
    """A sample and the verdict the rule must give it (``./build.sh rules test``): a normalized
    ``event``, or a ``raw`` vendor payload file (relative to the rule file) that the test normalizes
    as the pipeline does, from ``source`` (a vendor name, or auto)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    event: dict[str, Any] | None = None
    raw: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    source: Annotated[str, Field(max_length=64)] | None = None
    expect: Literal["match", "no_match"]

    @model_validator(mode="after")
    def _one_sample(self) -> RuleTest:
        if (self.event is None) == (self.raw is None):
            raise ValueError("a test has either event (a normalized event) or raw (a vendor payload file)")
        if self.source is not None and self.raw is None:
            raise ValueError("source applies to a raw payload only")
        return self


STORED = {"stored": True}  # the validation context of a rule read back from the store: Rule.model_validate_json(doc, context=STORED)


class Rule(_Strict):
    # Frozen: the parsed pattern is kept from validation, so the pattern must not change after it.
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: RuleId
    match: dict[str, Any]
    title: Annotated[str, Field(max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    mode: Literal["active", "shadow"] = "active"
    enabled: bool = True
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    threshold: Threshold | None = None
    suppress: Suppress | None = None
    actions: Annotated[list[Action], Field(min_length=1, max_length=10)] = Field(default_factory=lambda: [Action()])
    tests: Annotated[list[RuleTest], Field(max_length=100)] = Field(default_factory=list)
    tags: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=20)] = Field(default_factory=list)
    _pattern: Pattern = PrivateAttr()

    @field_validator("match")
    @classmethod
    def _valid_pattern(cls, value: dict[str, Any], info: ValidationInfo) -> Pattern:
        """Parse the pattern; the field holds the parse until ``model_post_init`` puts the document back.

        A field validator (not a model validator) so that pattern errors are reported with the
        other fields' errors, under ``match``. A rule read back from the store (``STORED`` as the
        validation context) is not held to what EventBridge refuses since it was stored
        (``parse_pattern``'s ``strict``): it is evaluated as it was."""
        try:
            return parse_pattern(value, strict=not (isinstance(info.context, dict) and info.context.get("stored")))
        except PatternError as exc:
            # pydantic prefixes the field name ("match"); keep the path below it
            raise ValueError(
                exc.path.removeprefix("match").lstrip(".") + ": " + exc.message if exc.path != "match" else exc.message
            ) from None

    def model_post_init(self, context: Any, /) -> None:
        parsed: Any = self.__dict__["match"]
        if not isinstance(parsed, Pattern):  # model_construct skips validation
            parsed = parse_pattern(parsed, strict=False)
        self._pattern = parsed
        self.__dict__["match"] = parsed.source

    @model_validator(mode="after")
    def _storable(self) -> Rule:
        """``rules push`` stores a rule as JSON and check_rules reads it back: a rule that cannot be
        written so is refused now, not there. YAML gives such rules: a "\\ud800" escape (a lone
        surrogate), !!binary that is not UTF-8, an alias that contains itself."""
        try:
            self.model_dump_json()
        except PydanticSerializationError as exc:  # (its message shows a lone surrogate escaped)
            raise ValueError(f"cannot be stored as JSON: {str(exc).removeprefix('Error serializing to JSON: ')}") from None
        return self

    @property
    def pattern(self) -> Pattern:
        """The parsed ``match`` pattern, as validated."""
        return self._pattern

    @property
    def display_title(self) -> str:
        return self.title or self.rule_id
