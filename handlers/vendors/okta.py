"""Okta System Log events (the /api/v1/logs API returns a JSON array of them)."""

from __future__ import annotations

from typing import Any, Iterable

from handlers.events import build
from handlers.outcomes import Ignored
from handlers.vendors._common import Context, clean, email, get, parse_time, require, text

SOURCE = "okta"
VENDOR = "Okta"
_SEVERITY = {"DEBUG": 1, "INFO": 1, "WARN": 3, "ERROR": 4}
# eventType -> (class_uid, activity_id, activity_name)
_ACCOUNT_CHANGES = {
    "user.account.lock": (9, "Lock"),
    "user.account.unlock": (99, "Unlock"),
    "user.account.reset_password": (4, "Password Reset"),
    "user.account.update_password": (3, "Password Change"),
    "user.mfa.factor.activate": (10, "MFA Factor Enable"),
    "user.mfa.factor.deactivate": (11, "MFA Factor Disable"),
    "user.mfa.factor.reset_all": (11, "MFA Factor Disable"),
    "user.lifecycle.create": (1, "Create"),
    "user.lifecycle.activate": (2, "Enable"),
    "user.lifecycle.suspend": (5, "Disable"),
    "user.lifecycle.deactivate": (5, "Disable"),
    "user.lifecycle.delete.initiated": (6, "Delete"),
}


def records(payload: Any) -> Iterable[Any]:
    yield from payload if isinstance(payload, list) else [payload]


def detect(record: Any) -> bool:
    return isinstance(record, dict) and "eventType" in record and "published" in record and "actor" in record


def _status(record: dict[str, Any]) -> int:
    result = (text(record, "outcome.result") or "").upper()
    return {"SUCCESS": 1, "ALLOW": 1, "FAILURE": 2, "DENY": 2}.get(result, 99 if result else 0)


def _person(entity: Any) -> dict[str, Any] | None:
    if not isinstance(entity, dict):
        return None
    alternate = text(entity, "alternateId")
    return clean({"email_addr": email(alternate), "name": text(entity, "displayName") or alternate, "uid": text(entity, "id")})


def normalize(record: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    kind = require(record, "eventType")
    targets = [t for t in record.get("target") or [] if isinstance(t, dict)]
    target_user = next((t for t in targets if t.get("type") == "User"), None)
    app = next((t for t in targets if t.get("type") == "AppInstance"), None)
    common = dict(
        uid=ctx.uid,
        tenant=ctx.tenant,
        vendor_name=VENDOR,
        product="Okta System Log",
        time_ms=parse_time(require(record, "published"), "published"),
        event_code=kind,
        vendor_uid=text(record, "uuid"),
        severity_id=_SEVERITY.get((text(record, "severity") or "").upper(), 1),
        status_id=_status(record),
        message=text(record, "displayMessage"),
        src_endpoint=clean(
            {
                "ip": text(record, "client.ipAddress"),
                "location": {
                    "country": text(record, "client.geographicalContext.country"),
                    "city": text(record, "client.geographicalContext.city"),
                },
            }
        ),  # fmt: skip
        device=clean({"os_name": text(record, "client.userAgent.os", blank=("", "Unknown", "null"))}),
        app_name=text(app, "displayName") if app else None,
    )
    actor = _person(record.get("actor"))
    if kind in _ACCOUNT_CHANGES:
        activity_id, activity_name = _ACCOUNT_CHANGES[kind]
        subject = _person(target_user) or actor
        return [build(**common, class_uid=3001, activity_id=activity_id, activity_name=activity_name,
                      user=subject, actor=actor if actor != subject else None)]  # fmt: skip
    if kind.startswith(("user.session.", "user.authentication.", "policy.evaluate_sign_on")) or (
        kind.startswith("system.") and ".send_factor" in kind
    ):
        activity_id, activity_name = (2, "Logoff") if kind == "user.session.end" else (1, "Logon")
        if ".send_factor" in kind:
            activity_id, activity_name = 99, "MFA Challenge"
        return [build(**common, class_uid=3002, activity_id=activity_id, activity_name=activity_name, user=actor)]
    if kind == "security.threat.detected":
        return [build(**{**common, "severity_id": max(common["severity_id"], 3)}, class_uid=2004, activity_id=1,
                      activity_name="Create", user=actor, finding_info={"title": text(record, "displayMessage") or kind})]  # fmt: skip
    if get(record, "actor.type") != "User":
        raise Ignored(f"not_behaviour: {kind} performed by {get(record, 'actor.type') or 'an unknown actor type'}")
    raise Ignored(f"unsupported_event_type: Okta {kind} carries no coaching signal")
