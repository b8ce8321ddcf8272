"""Coaching channels, without AWS: the settings (handlers.channels), the deliveries a match becomes,
each channel's message and its escaping (handlers.messages), and the senders (handlers.senders)
against a real HTTP receiver on 127.0.0.1 playing Slack, Teams and a learning platform.

Email is sent through an SES client the test passes in: here a recorder standing in for SES (no
SES can run without the embedded AWS; tests/test_channel_delivery.py sends through moto's SES).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.stack import ROOT
from handlers import channels, deliveries, messages
from handlers import webhook as guarded
from handlers.senders import PermanentError, Sender
from tests.helpers import read_received

NID = "0123456789abcdef0123456789abcdef"
LOCAL = guarded.Policy(allow_http=True, allowed_networks=(ip_network("127.0.0.0/8"),))
SETTINGS = {
    "default": ["email", "slack", "webhook"],
    "email": {"sender": "coaching@acme.example", "recipient_domains": ["acme.example"]},
    "slack": {"dm_by_email": True},
    "teams": {},
    "learning": {},
    "templates": {
        "email": {"subject": "Heads up: {title}", "link": "https://learn.acme.example/r/{rule}?who={user}"},
        "slack": {"title": "{title}", "body": "*Hi {user}*, {event.file} was blocked."},
        "teams": {"body": "**Hi {user}**, {event.file} was blocked.", "link": "https://learn.acme.example/{rule}"},
    },
}


def _match(**changes: Any) -> dict[str, Any]:
    match = {
        "notification_id": NID,
        "tenant_id": "acme",
        "rule_id": "malware",
        "title": "A malicious file ran",
        "user": {"email_addr": "jo@acme.example", "name": "Jo"},
        "event": {"file": "invoice.exe", "time_dt": "2026-12-06T08:00:00Z", "product": "Falcon"},
        "actions": [{"type": "notify"}],
    }
    match.update(changes)
    return match


def _templates(config: channels.Channels) -> dict[str, Any]:
    return {name: t.model_dump(exclude_none=True) for name, t in config.templates.items()}


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"default": ["slack"]}, "default names slack, which has no settings here"),
        (
            {"email": {"sender": "not-an-address", "recipient_domains": ["acme.example"]}},
            "email.sender: 'not-an-address' is not an email address",
        ),
        ({"email": {"sender": "a@acme.example", "recipient_domains": []}}, "email.recipient_domains"),
        ({"templates": {"slack": {"subject": "x"}}}, "templates.slack: only email has a subject"),
        ({"templates": {"email": {"link": "http://learn.example/"}}}, "link must start with https://"),
        ({"templates": {"email": {"link": "https://{event.url}/x"}}}, "a host without placeholders"),
        ({"templates": {"sms": {"body": "x"}}}, "templates.sms"),
        ({"slak": {}}, "slak: Extra inputs are not permitted"),
        ({"default": ["webhook", "webhook"]}, "default names a channel twice"),
    ],
)
def test_invalid_channel_settings_say_what_is_wrong(document, expected):
    with pytest.raises(channels.ChannelsError) as caught:
        channels.parse(document)
    assert expected in str(caught.value)


def test_the_tenant_command_refuses_an_unknown_placeholder_with_a_suggestion(tmp_path):
    bad = tmp_path / "channels.yaml"
    bad.write_text("templates:\n  slack:\n    body: 'Hi {usr}, see {event.uri}'\n")
    done = subprocess.run([sys.executable, "-m", "cli", "tenant", "--tenant", "acme", "--channels", str(bad), "--table", "t"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "templates.slack.body" in done.stderr and "{usr}" in done.stderr and "did you mean '{user}'?" in done.stderr
    assert "{event.uri}" in done.stderr and "did you mean '{event.url}'?" in done.stderr


# -- deliveries ----------------------------------------------------------------------------------


def test_without_channel_settings_a_match_is_the_one_webhook_delivery_it_always_was():
    match = _match()
    assert deliveries.deliveries(match, None) == [match]


def test_a_match_becomes_one_delivery_per_default_channel_each_with_its_own_id():
    config = channels.parse(SETTINGS)
    planned = deliveries.deliveries(_match(actions=[{"type": "notify"}, {"type": "notify", "template": "again"}]), config)
    assert [(d["notification_id"], d["delivery"]["channel"]) for d in planned] == [
        (f"{NID}-email", "email"),
        (f"{NID}-slack", "slack"),
        (NID, "webhook"),  # the webhook keeps the id receivers always deduplicated on
    ]
    assert all(d["delivery"]["notification_id"] == NID for d in planned)
    assert deliveries.deliveries(_match(), config) == deliveries.deliveries(_match(), config)  # deterministic: replay-safe


def test_an_actions_own_channels_replace_the_default():
    config = channels.parse(SETTINGS)
    planned = deliveries.deliveries(_match(actions=[{"type": "notify", "channels": ["teams"]}]), config)
    assert [d["delivery"]["channel"] for d in planned] == ["teams"]


def test_training_is_assigned_on_the_learning_platform_when_the_tenant_has_one():
    action = {"type": "assign_training", "training_id": "malware-101"}
    with_platform = deliveries.deliveries(_match(actions=[action]), channels.parse(SETTINGS))
    learning = [d for d in with_platform if d["delivery"]["channel"] == "learning"]
    assert [d["delivery"]["training_id"] for d in learning] == ["malware-101"]
    assert learning[0]["notification_id"] == f"{NID}-learning"
    without = deliveries.deliveries(_match(actions=[action]), channels.parse({**SETTINGS, "learning": None}))
    assert "learning" not in {d["delivery"]["channel"] for d in without}


def test_an_escalation_to_an_address_is_an_email_to_the_manager():
    planned = deliveries.deliveries(_match(actions=[{"type": "escalate", "escalate_to": "boss@acme.example"}]), channels.parse(SETTINGS))
    managers = [d for d in planned if d["delivery"]["audience"] == "manager"]
    assert [(d["notification_id"], d["delivery"]["to"]) for d in managers] == [(f"{NID}-email-manager", "boss@acme.example")]


def test_an_escalation_to_a_name_rides_the_webhook_or_fails_visibly():
    escalate = {"type": "escalate", "escalate_to": "manager"}
    with_webhook = deliveries.deliveries(_match(actions=[escalate]), channels.parse(SETTINGS))
    assert [d["delivery"]["channel"] for d in with_webhook] == ["webhook"]
    no_webhook = channels.parse({**SETTINGS, "default": ["email", "slack"]})
    (nowhere,) = deliveries.deliveries(_match(actions=[escalate]), no_webhook)
    assert nowhere["delivery"] == {"channel": "none", "audience": "manager", "notification_id": NID, "to": "manager"}
    sender = Sender("acme", no_webhook, None, LOCAL, lambda name: "", _no_ses)
    with pytest.raises(PermanentError, match="escalation to 'manager' has no channel"):
        sender.send(nowhere, time.monotonic() + 5)


def test_a_delivery_from_the_ledger_is_not_expanded_again():
    (one, *_) = deliveries.deliveries(_match(), channels.parse(SETTINGS))
    assert deliveries.deliveries(one, channels.parse(SETTINGS)) == [one]


# -- messages and their escaping -----------------------------------------------------------------

HOSTILE = {
    "file": "<https://evil.example|Reset your password> <!channel> </p><script>alert(1)</script> [x](https://evil.example) {{DATE(2026)}}",
}


def test_email_escapes_event_values_in_html_and_keeps_the_subject_on_one_line():
    config = channels.parse(SETTINGS)
    match = _match(title="Alert\r\nBcc: everyone@evil.example", event=HOSTILE,
                   actions=[{"type": "notify", "template": "Hi {user}, {event.file}"}])  # fmt: skip
    message = messages.email(match, _templates(config))
    assert "\r" not in message["subject"] and "\n" not in message["subject"]
    assert message["subject"] == "Heads up: Alert Bcc: everyone@evil.example"
    assert "<script>" not in message["html"] and "&lt;script&gt;" in message["html"]
    assert message["text"].startswith("Hi Jo, <https://evil.example|Reset")  # the text part is text
    assert '<a href="https://learn.acme.example/r/malware?who=Jo">Learn more</a>' in message["html"]


def test_slack_escapes_values_but_keeps_the_templates_own_mrkdwn():
    message = messages.slack(_match(event=HOSTILE), _templates(channels.parse(SETTINGS)))
    section = message["blocks"][1]["text"]["text"]
    assert section.startswith("*Hi Jo*, ")  # the tenant's bold stays bold
    assert "<" not in section and ">" not in section  # no link, mention or <!channel> from the event
    assert "&lt;https://evil.example|Reset your password&gt; &lt;!channel&gt;" in section


def test_teams_escapes_markdown_and_template_functions_in_values():
    message = messages.teams(_match(event=HOSTILE), _templates(channels.parse(SETTINGS)))
    card = message["attachments"][0]["content"]
    text = card["body"][1]["text"]
    assert text.startswith("**Hi Jo**, ")
    assert "\\[x\\]\\(https://evil\\.example\\)" in text and "{{" not in text
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Learn more", "url": "https://learn.acme.example/malware"}]


def test_link_values_are_percent_encoded_and_cannot_leave_the_tenants_host():
    config = channels.parse(SETTINGS)
    url = messages.link(_match(user={"name": "x/../../@evil.example?a=b#"}), _templates(config), "email")
    assert url == "https://learn.acme.example/r/malware?who=x%2F..%2F..%2F%40evil.example%3Fa%3Db%23"


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=80))
def test_no_event_value_becomes_markup_on_any_channel(value):
    config = channels.parse(SETTINGS)
    match = _match(event={"file": value}, user={"name": value, "email_addr": "jo@acme.example"},
                   actions=[{"type": "notify", "template": "{user}: {event.file}"}])  # fmt: skip
    templates = _templates(config)
    page = messages.email(match, templates)["html"]
    body = re.search(r"<body>(.*)</body>", page, re.S).group(1)  # type: ignore[union-attr]
    assert "<" not in re.sub(r"</?(p|br|a[^>]*)>", "", body)  # only the layout's own tags
    slack_text = messages.slack(match, templates)["blocks"][1]["text"]["text"]
    assert "<" not in slack_text and ">" not in slack_text
    teams_text = messages.teams(match, templates)["attachments"][0]["content"]["body"][1]["text"]
    assert "{{" not in teams_text
    assert not re.search(r"(?<!\\)\[", teams_text.replace("\\\\", ""))


# -- senders against a real receiver -------------------------------------------------------------


def _no_ses() -> Any:
    raise AssertionError("SES must not be called")


class _SesRecorder:
    """Stands in for SES's SendEmail (no SES here; the embedded AWS's is in test_channel_delivery)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, str]:
        self.sent.append(request)
        return {"MessageId": f"m-{len(self.sent)}"}


def _sender(base: str, config: dict[str, Any], secrets: dict[str, Any], ses: Any = _no_ses) -> Sender:
    stored = {name: value if isinstance(value, str) else json.dumps(value) for name, value in secrets.items()}
    return Sender("acme", channels.parse(config), f"{base}/hooks/acme", LOCAL, lambda name: stored[name], ses)


def test_slack_direct_message_looks_the_person_up_by_email_then_posts(webhook):
    base, record = webhook
    config = {**SETTINGS, "slack": {"dm_by_email": True, "api_url": f"{base}/slack-api/acme"}}
    sender = _sender(base, config, {"acme/slack": {"bot_token": "xoxb-test"}})
    (slack,) = [d for d in deliveries.deliveries(_match(event=HOSTILE), sender.channels) if d["delivery"]["channel"] == "slack"]
    assert sender.send(slack, time.monotonic() + 5).startswith("slack ts ")
    lookup, post = read_received(record)
    assert lookup["path"] == "/slack-api/acme/users.lookupByEmail" and lookup["body"] == "email=jo%40acme.example"
    assert lookup["headers"]["authorization"] == "Bearer xoxb-test"
    sent = json.loads(post["body"])
    assert post["path"] == "/slack-api/acme/chat.postMessage" and sent["channel"].startswith("U")
    assert "&lt;!channel&gt;" in sent["blocks"][1]["text"]["text"]


def test_a_person_slack_does_not_know_is_a_permanent_failure(webhook):
    base, _ = webhook
    config = {**SETTINGS, "slack": {"dm_by_email": True, "api_url": f"{base}/slack-api/acme"}}
    sender = _sender(base, config, {"acme/slack": {"bot_token": "xoxb-test"}})
    match = _match(user={"email_addr": "unknown.person@acme.example"})
    (slack,) = [d for d in deliveries.deliveries(match, sender.channels) if d["delivery"]["channel"] == "slack"]
    with pytest.raises(PermanentError, match="users_not_found"):
        sender.send(slack, time.monotonic() + 5)


def test_a_slack_api_error_that_may_pass_is_retried_not_dead_lettered(webhook):
    base, _ = webhook
    config = {**SETTINGS, "slack": {"dm_by_email": True, "api_url": f"{base}/slack-api/acme"}}
    sender = _sender(base, config, {"acme/slack": {"bot_token": "not-a-slack-token"}})  # Slack: not_authed
    (slack,) = [d for d in deliveries.deliveries(_match(), sender.channels) if d["delivery"]["channel"] == "slack"]
    with pytest.raises(guarded.DeliveryError, match="not_authed") as caught:
        sender.send(slack, time.monotonic() + 5)
    assert not isinstance(caught.value, PermanentError)


def test_slack_incoming_webhook_teams_and_the_learning_platform_are_posted_to(webhook):
    base, record = webhook
    config = {**SETTINGS, "default": ["slack", "teams"]}
    secrets = {
        "acme/slack": {"webhook_url": f"{base}/slack-hook/acme/T000/B000/XXXX"},
        "acme/teams": {"webhook_url": f"{base}/teams/acme/workflow"},
        "acme/learning": {"url": f"{base}/learning/acme/assignments", "token": "lms-token"},
    }
    sender = _sender(base, config, secrets)
    match = _match(actions=[{"type": "assign_training", "training_id": "malware-101"}], escalation={"level": "training", "count": 2})
    details = [sender.send(d, time.monotonic() + 5) for d in deliveries.deliveries(match, sender.channels)]
    assert details == ["slack HTTP 200", "teams HTTP 202", "learning HTTP 201"]
    slack_hook, teams, learning = read_received(record)
    assert "blocks" in json.loads(slack_hook["body"])
    card = json.loads(teams["body"])["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive" and card["content"]["type"] == "AdaptiveCard"
    assignment = json.loads(learning["body"])
    assert assignment["course_id"] == "malware-101" and assignment["user"]["email_addr"] == "jo@acme.example"
    assert assignment["assignment_id"] == f"{NID}-learning" == learning["headers"]["idempotency-key"]
    assert learning["headers"]["authorization"] == "Bearer lms-token" and assignment["escalation"]["level"] == "training"


def test_channel_urls_go_through_the_guarded_delivery(webhook):
    # A Teams URL that redirects is not followed, and one on a private address is refused before
    # any connection (the stub resolver answers; connecting is never attempted).
    base, record = webhook
    redirect = _sender(base, {**SETTINGS, "default": ["teams"]}, {"acme/teams": {"webhook_url": f"{base}/status/302/teams/acme"}})
    (teams,) = deliveries.deliveries(_match(), redirect.channels)
    with pytest.raises(guarded.DeliveryError, match="redirects are not followed"):
        redirect.send(teams, time.monotonic() + 5)
    public_only = Sender(
        "acme", redirect.channels, None, guarded.Policy(), lambda name: json.dumps({"webhook_url": "https://10.0.0.8/hook"}), _no_ses
    )
    with pytest.raises(guarded.DeliveryError, match="private"):
        public_only.send(teams, time.monotonic() + 5)


def test_email_goes_only_to_the_tenants_domains_and_to_valid_addresses():
    config = channels.parse(SETTINGS)
    sender = Sender("acme", config, None, LOCAL, lambda name: "", _no_ses)
    for user, why in (({"email_addr": "victim@elsewhere.example"}, "outside the tenant's recipient_domains"),
                      ({"email_addr": "jo@acme.example\r\nBcc: x@acme.example"}, "is not an email address"),
                      ({"name": "Jo"}, "names no email address")):  # fmt: skip
        (email,) = [d for d in deliveries.deliveries(_match(user=user), config) if d["delivery"]["channel"] == "email"]
        with pytest.raises(PermanentError, match=why):
            sender.send(email, time.monotonic() + 5)


def test_email_to_the_person_and_the_manager_through_ses():
    ses = _SesRecorder()
    config = channels.parse(SETTINGS)
    sender = Sender("acme", config, None, LOCAL, lambda name: "", lambda: ses)
    match = _match(actions=[{"type": "notify"}, {"type": "escalate", "escalate_to": "boss@team.acme.example"}])
    for delivery in deliveries.deliveries(match, config):
        if delivery["delivery"]["channel"] == "email":
            sender.send(delivery, time.monotonic() + 5)
    person, manager = ses.sent
    assert person["Destination"] == {"ToAddresses": ["jo@acme.example"]} and person["FromEmailAddress"] == "coaching@acme.example"
    assert person["Content"]["Simple"]["Subject"]["Data"] == "Heads up: A malicious file ran"
    assert manager["Destination"] == {"ToAddresses": ["boss@team.acme.example"]}  # a subdomain of a recipient domain
    assert manager["Content"]["Simple"]["Subject"]["Data"] == "Coaching escalation: Jo"
    assert {"Name": "notification", "Value": f"{NID}-email-manager"} in manager["EmailTags"]


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("not json", "is not a JSON object"),
        ({"token": "t"}, "has no url"),
        ({"url": "https://x.example/", "token": "a\r\nb"}, "line break"),
    ],
)
def test_a_malformed_channel_secret_is_a_retried_failure_that_never_shows_the_secret(secret, why):
    sender = _sender("http://127.0.0.1:9", SETTINGS, {"acme/learning": secret})
    learning = deliveries.deliveries(_match(actions=[{"type": "assign_training", "training_id": "c"}]), sender.channels)[-1]
    with pytest.raises(guarded.DeliveryError, match=why) as caught:
        sender.send(learning, time.monotonic() + 5)
    assert not isinstance(caught.value, PermanentError)
    assert "a\r\nb" not in str(caught.value) and "not json" not in str(caught.value)
