"""Per-person coaching policy, pure core: a tenant's escalation ladder and frequency cap.

A tenant's settings (``handlers.tenant_settings``, attribute ``coaching``) may hold:

- ``escalation``: ``{window, steps: [{at, level}], escalate_to}``: the person's repeat count within
  ``window`` (their notified matches, across the tenant's rules, this one included) picks the last
  step whose ``at`` it reached: ``tip``, then ``training`` (a micro-course is assigned), then
  ``manager`` (the person's manager is told);
- ``frequency_cap``: ``{max, window}``: at most ``max`` notifications per person within any
  ``window``; a match over it is decided ``capped``.

Both absent: today's behaviour (every match is a tip, no cap, nothing recorded). The state behind
both (what each person was sent, replay-safe and concurrency-safe) is ``handlers.coaching_state``;
this module validates the settings and makes the decisions from what that state read.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from handlers.durations import Duration

Level = Literal["tip", "training", "manager"]
LEVELS: tuple[Level, ...] = ("tip", "training", "manager")
MAX_CAP = 1000  # deciding a capped match reads at most about twice this many items
MAX_STEP = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    at: Annotated[int, Field(ge=1, le=MAX_STEP)]
    level: Level


class Escalation(_Strict):
    window: Duration
    steps: Annotated[list[Step], Field(min_length=1, max_length=10)]
    # Who is told at the manager level when the rule's own escalate action names nobody: a fixed
    # address, or a name the coaching platform resolves per person (``manager``: their manager).
    escalate_to: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @field_validator("steps")
    @classmethod
    def _a_ladder(cls, steps: list[Step]) -> list[Step]:
        if steps[0].at != 1:
            raise ValueError(f"the first step must be at 1 (every notified match has a level), not at {steps[0].at}")
        for before, step in zip(steps, steps[1:], strict=False):
            if step.at <= before.at:
                raise ValueError(f"steps must be in increasing 'at' order: {step.at} follows {before.at}")
            if LEVELS.index(step.level) < LEVELS.index(before.level):
                raise ValueError(f"a ladder never steps down: {step.level!r} at {step.at} follows {before.level!r} at {before.at}")
        return steps

    def level(self, count: int) -> Level:
        """The level of a person's ``count``-th notified match within the window."""
        level = self.steps[0].level
        for step in self.steps:
            if count >= step.at:
                level = step.level
        return level


class FrequencyCap(_Strict):
    max: Annotated[int, Field(ge=1, le=MAX_CAP)]
    window: Duration


class Coaching(_Strict):
    escalation: Escalation | None = None
    frequency_cap: FrequencyCap | None = None

    @property
    def enabled(self) -> bool:
        return self.escalation is not None or self.frequency_cap is not None

    def stored(self) -> dict[str, Any]:
        """The settings as stored (durations in seconds, absent ones left out)."""
        return self.model_dump(exclude_none=True)


class CoachingError(ValueError):
    """Invalid coaching settings; the message names every offending place."""


def parse(document: Any) -> Coaching:
    """Validate coaching settings (a file's content, or the stored attribute)."""
    try:
        return Coaching.model_validate(document if document is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "coaching"
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise CoachingError("; ".join(problems)) from None


# -- decisions --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the coaching policy made of a match its rule decided to notify."""

    decision: Literal["notify", "capped"]
    level: Level | None = None  # None without an escalation ladder (and when capped)
    count: int = 0  # the person's notified matches in the escalation window, this one included

    @property
    def escalation(self) -> dict[str, Any] | None:
        return None if self.level is None else {"level": self.level, "count": self.count}


def over_cap(notified: list[int], at: int, cap: FrequencyCap) -> bool:
    """Whether notifying a match at ``at`` (ms) would put more than ``cap.max`` notifications in some
    window of ``cap.window`` containing it, given the times (ms) of the person's notified matches
    from ``at - window`` to ``at + window``. Every window is checked, not only the one ending at
    ``at``: a late event cannot squeeze in among later ones that filled the window."""
    width = cap.window * 1000
    times = sorted(notified)
    # The fullest window containing `at` starts at one of these times, or at `at` itself.
    starts = [t for t in times if at - width < t <= at] + [at]
    for start in starts:
        inside = bisect.bisect_left(times, start + width) - bisect.bisect_left(times, start)
        if inside + 1 > cap.max:
            return True
    return False


def ladder_actions(actions: list[dict[str, Any]], level: Level | None, escalate_to: str | None) -> list[dict[str, Any]]:
    """The rule's actions (as dumped) at an escalation level; each level adds to the one below.

    - ``tip``: the rule's actions as written.
    - ``training``: its ``notify`` actions become ``assign_training`` of the rule's course (the first
      ``training_id`` among its actions), keeping their templates, unless the rule assigns a course
      already; without a course, unchanged (the body's ``escalation.level`` still says
      ``training``, for the platform to choose one).
    - ``manager``: as ``training``, plus an ``escalate`` action (unless the rule has one) to
      ``escalate_to`` (the rule's own escalate target first, else the tenant's setting; neither:
      left to the coaching platform, which knows the person's manager: normalized events carry no
      manager)."""
    if level is None or level == "tip":
        return actions
    course = next((a["training_id"] for a in actions if a.get("training_id")), None)
    # A rule that assigns its course at every level already: its message stays a message (the
    # course is not assigned twice).
    assigns = any(a.get("type") == "assign_training" for a in actions)
    out: list[dict[str, Any]] = []
    for action in actions:
        if course and not assigns and action.get("type", "notify") == "notify":
            action = {**action, "type": "assign_training", "training_id": course}
        if action not in out:
            out.append(action)
    if level == "manager":
        if not any(a.get("type") == "escalate" for a in out):
            out.append({"type": "escalate"})
        if escalate_to:
            out = [{"escalate_to": escalate_to, **a} if a.get("type") == "escalate" else a for a in out]
    return out
