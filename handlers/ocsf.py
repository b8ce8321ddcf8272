"""The OCSF 1.3 vocabularies coachflow uses, in one place: classes, severities, dispositions,
statuses, and the activity ids vendors map their own words to.

Vendors translate their vocabulary into these ids (``HTTP_ACTIVITY["GET"]``,
``severity_by_name("medium")``); ``events.build`` derives the names from the ids.
"""

from __future__ import annotations

from typing import Final

VERSION: Final = "1.3.0"

# The OCSF classes coachflow emits: class_uid -> (class_name, category_uid)
CLASSES: Final[dict[int, tuple[str, int]]] = {
    1007: ("Process Activity", 1),
    2004: ("Detection Finding", 2),
    2005: ("Incident Finding", 2),
    2006: ("Data Security Finding", 2),
    3001: ("Account Change", 3),
    3002: ("Authentication", 3),
    4001: ("Network Activity", 4),
    4002: ("HTTP Activity", 4),
    4003: ("DNS Activity", 4),
    4009: ("Email Activity", 4),
    4010: ("Email URL Activity", 4),
    6001: ("Web Resources Activity", 6),
    6003: ("API Activity", 6),
    201004: ("Registry Value Activity", 1),  # OCSF Windows extension
}

OTHER: Final = 99  # every OCSF enumeration's "Other"

SEVERITIES: Final = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal", 99: "Other"}
DISPOSITIONS: Final = {
    0: "Unknown", 1: "Allowed", 2: "Blocked", 3: "Quarantined", 4: "Isolated", 5: "Deleted", 6: "Dropped",
    7: "Custom Action", 8: "Approved", 9: "Restored", 10: "Exonerated", 14: "Delayed", 15: "Detected",
    16: "No Action", 17: "Logged", 19: "Alert", 25: "Rejected", 99: "Other",
}  # fmt: skip
STATUSES: Final = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}

# Severity words vendors use (CrowdStrike, Netskope, Microsoft, PAN-OS) -> severity_id
_SEVERITY_WORDS: Final = {"informational": 1, "info": 1, "low": 2, "med": 3, "medium": 3, "high": 4, "critical": 5}


def severity_by_name(word: str | None) -> int | None:
    """severity_id for a vendor's severity word, case-insensitive; None for an unknown word."""
    return _SEVERITY_WORDS.get(word.strip().lower()) if word else None


def severity_from_score(score: float) -> int:
    """severity_id for a 0-100 risk score (CrowdStrike's EPP/XDR and Alerts API scale)."""
    return 5 if score >= 80 else 4 if score >= 60 else 3 if score >= 40 else 2 if score >= 20 else 1


# HTTP Activity (4002) activity_id by request method
HTTP_ACTIVITY: Final = {"CONNECT": 1, "DELETE": 2, "GET": 3, "HEAD": 4, "OPTIONS": 5, "POST": 6, "PUT": 7, "TRACE": 8}
# API Activity (6003) activity_id by operation
API_ACTIVITY: Final = {"create": 1, "read": 2, "update": 3, "delete": 4}
# Web Resources Activity (6001) activity_id by what was done to the resource
WEB_RESOURCES_ACTIVITY: Final = {"create": 1, "read": 2, "update": 3, "delete": 4, "search": 5, "import": 6, "export": 7, "share": 8}


def api_activity(operation: str) -> int:
    """API Activity id for an operation name that contains its verb ("detection_update" -> 3).

    "read" is not looked for inside names: too many words contain it ("spreadsheet_update")."""
    lowered = operation.lower()
    return next((API_ACTIVITY[verb] for verb in ("create", "update", "delete") if verb in lowered), OTHER)
