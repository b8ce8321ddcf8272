"""Okta System Log events (the /api/v1/logs API returns a JSON array of them)."""

from __future__ import annotations

from typing import Any

from handlers.events import Header, build
from handlers.ocsf import OTHER
from handlers.outcomes import Ignored, IgnoreReason
from handlers.records import Context, Event
from handlers.vendors.fields import clean, each, email, get, parse_time, require, text

SOURCE = "okta"
VENDOR = "Okta"
_SEVERITY = {"DEBUG": 1, "INFO": 1, "WARN": 3, "ERROR": 4}
# eventType -> Account Change (3001) activity (activity_id, activity_name)
_ACCOUNT_CHANGES = {
    "user.account.lock": (9, "Lock"),
    "user.account.unlock": (OTHER, "Unlock"),
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

records = each  # /api/v1/logs answers with a JSON array of LogEvents


def detect(record: Any) -> bool:
    return isinstance(record, dict) and "eventType" in record and "published" in record and "actor" in record


def _status(record: dict[str, Any]) -> int:
    result = (text(record, "outcome.result") or "").upper()
    return {"SUCCESS": 1, "ALLOW": 1, "FAILURE": 2, "DENY": 2}.get(result, OTHER if result else 0)


def _person(entity: Any) -> dict[str, Any] | None:
    if not isinstance(entity, dict):
        return None
    alternate = text(entity, "alternateId")
    return clean({"email_addr": email(alternate), "name": text(entity, "displayName") or alternate, "uid": text(entity, "id")})


def normalize(record: dict[str, Any], ctx: Context) -> list[Event]:
    kind = require(record, "eventType")
    targets = [t for t in record.get("target") or [] if isinstance(t, dict)]
    target_user = next((t for t in targets if t.get("type") == "User"), None)
    app = next((t for t in targets if t.get("type") == "AppInstance"), None)
    header = Header(VENDOR, "Okta System Log", parse_time(require(record, "published"), "published"), kind, text(record, "uuid"))
    severity = _SEVERITY.get((text(record, "severity") or "").upper(), 1)
    actor = _person(record.get("actor"))

    def event(
        class_uid: int,
        activity_id: int,
        activity_name: str,
        user: dict[str, Any] | None,
        actor: dict[str, Any] | None = None,
        severity_id: int = severity,
        finding_info: dict[str, Any] | None = None,
    ) -> Event:
        return build(
            ctx,
            header,
            class_uid=class_uid,
            activity_id=activity_id,
            activity_name=activity_name,
            severity_id=severity_id,
            status_id=_status(record),
            message=text(record, "displayMessage"),
            user=user,
            actor=actor,
            finding_info=finding_info,
            src_endpoint=clean(
                {
                    "ip": text(record, "client.ipAddress"),
                    "location": {
                        "country": text(record, "client.geographicalContext.country"),
                        "city": text(record, "client.geographicalContext.city"),
                    },
                }
            ),
            device=clean({"os_name": text(record, "client.userAgent.os", blank=("", "Unknown", "null"))}),
            app_name=text(app, "displayName") if app else None,
        )

    if kind in _ACCOUNT_CHANGES:
        activity_id, activity_name = _ACCOUNT_CHANGES[kind]
        subject = _person(target_user) or actor
        return [event(3001, activity_id, activity_name, subject, actor=actor if actor != subject else None)]
    if kind.startswith(("user.session.", "user.authentication.", "policy.evaluate_sign_on")) or (
        kind.startswith("system.") and ".send_factor" in kind
    ):
        activity_id, activity_name = (2, "Logoff") if kind == "user.session.end" else (1, "Logon")
        if ".send_factor" in kind:
            activity_id, activity_name = OTHER, "MFA Challenge"
        return [event(3002, activity_id, activity_name, actor)]
    if kind == "security.threat.detected":
        finding = {"title": text(record, "displayMessage") or kind}
        return [event(2004, 1, "Create", actor, severity_id=max(severity, 3), finding_info=finding)]
    if get(record, "actor.type") != "User":
        actor_type = get(record, "actor.type") or "an unknown actor type"
        raise Ignored(IgnoreReason.NOT_BEHAVIOUR, f"{kind} performed by {actor_type}")
    raise Ignored(IgnoreReason.UNSUPPORTED_EVENT_TYPE, f"Okta {kind} carries no coaching signal")
