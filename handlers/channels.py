"""A tenant's coaching channels, pure core: where each match's coaching goes, and in which words.

The tenant's settings (``handlers.tenant_settings``, attribute ``channels``; ``./build.sh tenant
--channels FILE`` validates and sets them) say which channels the tenant uses, how, and with which
templates. Without them a match is one signed POST of the whole notification to the tenant's
webhook, as it always was.

Channels:

- ``email``: through SES, from the tenant's ``sender`` (an identity verified in SES) to the person
  (``user.email_addr``), and to the manager (an ``escalate`` action's address). Only addresses in
  the tenant's ``recipient_domains`` are ever mailed: an address in an event is attacker-controlled
  (a failed sign-in for ``victim@elsewhere``) and our sender must never be turned into a spam relay.
- ``slack``: an incoming webhook (posts to its channel), or a bot token: a direct message to the
  person found by their email address (``dm_by_email``, where the tenant allows it), else a post
  to ``channel``.
- ``teams``: a Teams workflow webhook, an Adaptive Card.
- ``webhook``: the signed POST of the whole notification (``handlers.notify``), to ``webhook_url``.
- ``learning``: an ``assign_training`` action's course assigned to the person on the tenant's
  learning platform (one POST, idempotent on the delivery id).

Credentials never live here (nor in rules, tfvars or Terraform state): each channel's are one
Secrets Manager secret, ``<prefix><tenant>/<channel>``, a JSON object
(``handlers.deliveries.SECRET_FIELDS``).

``handlers.deliveries`` expands a match into one delivery per channel and audience by them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from handlers.deliveries import EMAIL

MessageChannel = Literal["email", "slack", "teams", "webhook"]  # what a rule's action may name
_DOMAIN = r"^[a-z0-9-]+(\.[a-z0-9-]+)+$"

Text = Annotated[str, Field(min_length=1, max_length=2000)]


def _address(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError(f"{value[:80]!r} is not an email address")
    return value


Address = Annotated[str, Field(max_length=254), AfterValidator(_address)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Template(_Strict):
    """A channel's words: plain text with placeholders (``handlers.notify.PLACEHOLDERS``). The
    channel escapes the values it fills in for its own format (``handlers.messages``); ``link`` is
    an https URL whose placeholders are percent-encoded."""

    subject: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # email
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None  # slack, teams: the heading
    body: Text | None = None
    link: Annotated[str, Field(min_length=9, max_length=1000)] | None = None

    @field_validator("link")
    @classmethod
    def _https_link(cls, link: str) -> str:
        # The scheme and host are the tenant's own words: a placeholder there could send a person
        # anywhere an event says.
        host = re.match(r"https://([^/?#{}]+)(?:[/?#]|$)", link)
        if host is None:
            raise ValueError(f"link must start with https:// and a host without placeholders, not {link[:60]!r}")
        return link


class Email(_Strict):
    sender: Address
    recipient_domains: Annotated[list[Annotated[str, Field(pattern=_DOMAIN, max_length=253)]], Field(min_length=1, max_length=50)]
    reply_to: Address | None = None

    def allows(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.recipient_domains)


class Slack(_Strict):
    dm_by_email: bool = False  # with a bot token: a direct message to the person, found by email
    channel: Annotated[str, Field(pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$")] | None = None  # with a bot token and no DM
    api_url: Annotated[str, Field(pattern=r"^https?://[^\s]+[^/\s]$")] = "https://slack.com/api"


class Empty(_Strict):
    """A channel whose settings are all in its secret."""


def _webhook_only() -> list[MessageChannel]:
    return ["webhook"]


class Channels(_Strict):
    default: Annotated[list[MessageChannel], Field(min_length=1, max_length=4)] = Field(default_factory=_webhook_only)
    email: Email | None = None
    slack: Slack | None = None
    teams: Empty | None = None
    learning: Empty | None = None
    templates: dict[MessageChannel, Template] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _configured(self) -> Channels:
        missing = [c for c in self.default if c != "webhook" and getattr(self, c) is None]
        if missing:
            raise ValueError(f"default names {', '.join(missing)}, which has no settings here (add e.g. '{missing[0]}: {{}}')")
        if len(set(self.default)) != len(self.default):
            raise ValueError(f"default names a channel twice: {self.default}")
        for channel, template in self.templates.items():
            if template.subject is not None and channel != "email":
                raise ValueError(f"templates.{channel}: only email has a subject (use title)")
        return self

    def configured(self, channel: str) -> bool:
        return channel == "webhook" or getattr(self, channel, None) is not None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ChannelsError(ValueError):
    """Invalid channel settings; the message names every offending place."""


def parse(document: Any) -> Channels:
    """Validate channel settings (a file's content, or the stored attribute)."""
    try:
        return Channels.model_validate(document if document is not None else {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or "channels"
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise ChannelsError("; ".join(problems)) from None
