"""Webhook signatures: receivers can verify coachflow's notifications with the Standard Webhooks
reference library (an independent implementation, installed for the tests) and with the
documented ``X-Coachflow-Signature``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from handlers import notify

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
BODY = notify.encode({"notification_id": "ab" * 16, "tenant_id": "acme", "actions": [{"message": "Hi Zoë, ünïcödé"}]})


def _headers(body: bytes = BODY, timestamp: int | None = None) -> dict[str, str]:
    return notify.headers(SECRET, "ab" * 16, int(time.time()) if timestamp is None else timestamp, body)


def test_the_standard_webhooks_reference_verifier_accepts_a_notification():
    headers = _headers()
    # the receiver's secret: "whsec_" + base64 of the tenant's secret (docs/rules.md)
    verified = Webhook("whsec_" + base64.b64encode(SECRET.encode()).decode()).verify(BODY, headers)
    assert verified["notification_id"] == headers["webhook-id"] == headers["X-Coachflow-Notification-Id"]


@pytest.mark.parametrize("tamper", ["body", "id", "secret", "old"])
def test_the_reference_verifier_refuses_what_was_not_signed(tamper):
    headers, body, secret = _headers(), BODY, SECRET
    if tamper == "body":
        body = BODY.replace(b"acme", b"acmf")
    elif tamper == "id":
        headers["webhook-id"] = "cd" * 16
    elif tamper == "secret":
        secret = "another"
    else:  # signed an hour ago: a replay
        headers = _headers(timestamp=int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret.encode()).verify(body, headers)


def test_the_coachflow_signature_is_hmac_over_timestamp_and_body():
    headers = _headers(timestamp=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers["X-Coachflow-Signature"] == f"sha256={expected}" and headers["X-Coachflow-Timestamp"] == "1700000000"
