"""Each channel's message for one delivery, pure core: rendered from the tenant's templates and
escaped for the channel.

What is escaped, and why: the values filled into a template come from vendor events, which an
attacker can shape (a file named ``<https://evil.example|Reset your password>``, a URL title with
``</p><a href=...>``). Each channel escapes them for its own format, so a value is only ever text:

- email: the body template is plain text; the HTML part escapes all of it (``html.escape``) and
  lays it out in fixed markup, the link as a button; the text part is the same text. The subject
  loses control characters (no header can be started from it).
- Slack: the template's own text is mrkdwn (the tenant may write ``*bold*``); values have ``&``,
  ``<`` and ``>`` escaped as Slack asks, so none becomes a link, a mention or ``<!channel>``.
- Teams: the template's own text is the Adaptive Card markdown subset; values have its markdown
  characters backslash-escaped, and ``{{`` broken, so none becomes a link or a ``{{DATE()}}``.
- links: the template is an https URL whose host is the tenant's (``channels.Template``); values
  are percent-encoded into it.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

from handlers.notify import DEFAULT_TEMPLATE, render

DEFAULT_SUBJECT = "Security coaching: {title}"
DEFAULT_TITLE = "{title}"
MANAGER_SUBJECT = "Coaching escalation: {user}"
MANAGER_TEMPLATE = (
    "{user} has been coached several times recently. The latest: {title} "
    "(reported by {event.product} on {event.time_dt}). A conversation may help."
)
LINK_LABEL = "Learn more"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_TEAMS_MARKDOWN = re.compile(r"([\\`*_\[\]()#+\-.!<>~|])")


def _template(templates: dict[str, Any], channel: str) -> dict[str, Any]:
    found: dict[str, Any] = templates.get(channel) or {}
    return found


def body_template(match: dict[str, Any], templates: dict[str, Any], channel: str) -> str:
    """The body's template: the rule action's own (its ``template``) first, else the tenant's for
    the channel, else the default."""
    for action in match.get("actions") or []:
        if action.get("type", "notify") in ("notify", "assign_training") and action.get("template"):
            wanted = action.get("channels")
            if not wanted or channel in wanted:
                return str(action["template"])
    return str(_template(templates, channel).get("body") or DEFAULT_TEMPLATE)


def link(match: dict[str, Any], templates: dict[str, Any], channel: str) -> str | None:
    template = _template(templates, channel).get("link")
    return render(template, match, lambda v: quote(v, safe="")) if template else None


def single_line(text: str, limit: int) -> str:
    return _CONTROL.sub(" ", text).strip()[:limit]


def slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_escape(value: str) -> str:
    return _TEAMS_MARKDOWN.sub(r"\\\1", value).replace("{{", "{\u200b{")


def email(match: dict[str, Any], templates: dict[str, Any], audience: str = "person") -> dict[str, str]:
    """``{subject, text, html}`` of the email to the person, or to their manager."""
    if audience == "manager":
        subject_template, body = MANAGER_SUBJECT, _manager_template(match)
    else:
        subject_template = _template(templates, "email").get("subject") or DEFAULT_SUBJECT
        body = body_template(match, templates, "email")
    subject = single_line(render(subject_template, match), 200)
    text = render(body, match)
    url = link(match, templates, "email") if audience == "person" else None
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p.strip())
    button = f'<p><a href="{html.escape(url, quote=True)}">{LINK_LABEL}</a></p>' if url else ""
    page = f'<!doctype html><html><head><meta charset="utf-8"></head><body>{paragraphs}{button}</body></html>'
    return {"subject": subject, "text": text + (f"\n\n{LINK_LABEL}: {url}" if url else ""), "html": page}


def _manager_template(match: dict[str, Any]) -> str:
    for action in match.get("actions") or []:
        if action.get("type") == "escalate" and action.get("template"):
            return str(action["template"])
    return MANAGER_TEMPLATE


def slack(match: dict[str, Any], templates: dict[str, Any]) -> dict[str, Any]:
    """A Slack message (Block Kit, with a mrkdwn fallback ``text``)."""
    own = _template(templates, "slack")
    title = single_line(render(own.get("title") or DEFAULT_TITLE, match), 150)
    text = render(body_template(match, templates, "slack"), match, slack_escape)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title or "Security coaching"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
    ]
    url = link(match, templates, "slack")
    if url:
        blocks.append({"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": LINK_LABEL}, "url": url}]})
    return {"text": text[:3000], "blocks": blocks}


def teams(match: dict[str, Any], templates: dict[str, Any]) -> dict[str, Any]:
    """A Teams message carrying one Adaptive Card, as a Teams workflow webhook takes it."""
    own = _template(templates, "teams")
    title = render(own.get("title") or DEFAULT_TITLE, match, teams_escape)
    text = render(body_template(match, templates, "teams"), match, teams_escape)
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": single_line(title, 200), "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": text, "wrap": True},
        ],
    }
    url = link(match, templates, "teams")
    if url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": LINK_LABEL, "url": url}]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def assignment(match: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The learning platform's assignment: a course for a person, idempotent on ``assignment_id``."""
    delivery = match["delivery"]
    user = match.get("user") or {}
    return {
        "assignment_id": match["notification_id"],
        "tenant_id": tenant,
        "course_id": delivery["training_id"],
        "user": {k: user[k] for k in ("email_addr", "name", "uid") if user.get(k)},
        "reason": {"rule_id": match.get("rule_id"), "title": match.get("title"), "event_time": (match.get("event") or {}).get("time_dt")},
        **({"escalation": match["escalation"]} if match.get("escalation") else {}),
    }
