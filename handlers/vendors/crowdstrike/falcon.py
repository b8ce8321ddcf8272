"""Mappings every CrowdStrike feed shares: severities, the person, what the sensor did."""

from __future__ import annotations

from typing import Any

from handlers.ocsf import severity_by_name, severity_from_score
from handlers.vendors.fields import clean, email

VENDOR = "CrowdStrike"
SERVICE_SIDS = {"S-1-5-18": "LocalSystem", "S-1-5-19": "LocalService", "S-1-5-20": "NetworkService"}


def severity(value: Any, name: str | None) -> int:
    """severity_id from Falcon's severity name, else its number: the legacy 1-5 scale or 0-100."""
    named = severity_by_name(name)
    if named:
        return named
    if value is None or value == "" or isinstance(value, bool):
        return 0
    score = float(value)
    if score <= 5:  # the legacy 1-5 scale
        return max(0, int(score))
    return severity_from_score(score)  # the 0-100 scale of EPP/XDR events and the Alerts API


def user(name: str | None, domain: str | None = None, principal: str | None = None) -> dict[str, Any] | None:
    if not name and not principal:
        return None
    if name and "\\" in name:
        domain, name = name.split("\\", 1)
    return clean({"name": name, "domain": domain or None, "email_addr": email(principal, name)})


def disposition(flags: Any, description: str | None) -> int:
    """OCSF disposition from Falcon's pattern disposition: what the sensor actually did."""
    would_have = bool(description and "would have" in description.lower())
    if isinstance(flags, dict):
        # The Streaming API spells the flags QuarantineFile, the Alerts API quarantine_file.
        flags = {str(name).replace("_", "").lower(): value for name, value in flags.items()}
    if isinstance(flags, dict) and not flags.get("policydisabled") and not would_have:
        if any(flags.get(k) for k in ("quarantinefile", "quarantinemachine", "containmentfilesystem")):
            return 3  # Quarantined
        blocking = ("killprocess", "killparent", "killsubprocess", "operationblocked", "processblocked", "registryoperationblocked")
        if any(flags.get(k) for k in blocking):
            return 2  # Blocked
    if description and not would_have and any(w in description.lower() for w in ("blocked", "killed", "quarantined")):
        return 2
    return 15  # Detected
