"""What the channels' own APIs answer, for the receiver on 127.0.0.1 (``emulator.webhook_receiver``).

Only the parts coachflow's senders rely on, as the vendors document them: Slack's Web API answers
HTTP 200 with ``{"ok": false, "error": ...}`` when a call fails (``users.lookupByEmail``,
``chat.postMessage``, both needing a bearer token); a Slack incoming webhook answers 200 ``ok``; a
Teams workflow webhook 202; a learning platform 201 with the assignment. Any answer the status
prefixes chose other than the default 204 is kept as it is (a failure stays a failure).
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qs


def _slack(method: str, headers: dict[str, str], body: str) -> dict[str, object]:
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not auth.startswith("Bearer xox"):
        return {"ok": False, "error": "not_authed"}
    if method == "users.lookupByEmail":
        email = (parse_qs(body).get("email") or [""])[0]
        if not email or email.startswith("unknown"):
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": "U" + hashlib.sha256(email.encode()).hexdigest()[:10].upper(), "profile": {"email": email}}}
    if method == "chat.postMessage":
        try:
            message = json.loads(body)
        except ValueError:
            return {"ok": False, "error": "invalid_json"}
        if not isinstance(message, dict) or not message.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not message.get("text") and not message.get("blocks"):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "channel": message["channel"], "ts": f"{time.time():.6f}"}
    return {"ok": False, "error": "unknown_method"}


def answer(path: str, status: int, headers: dict[str, str], body: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of the answer to a request on ``path`` the receiver would answer
    ``status`` (204 unless a status prefix chose otherwise)."""
    if status != 204:
        return status, "", b""
    if "/slack-api/" in path:
        method = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        return 200, "application/json; charset=utf-8", json.dumps(_slack(method, headers, body)).encode()
    if "/slack-hook/" in path:
        return 200, "text/html", b"ok"
    if "/teams/" in path:
        return 202, "", b""
    if "/learning/" in path:
        try:
            assignment = json.loads(body).get("assignment_id")
        except (ValueError, AttributeError):
            return 400, "", b""
        return 201, "application/json", json.dumps({"id": assignment, "status": "assigned"}).encode()
    return status, "", b""
