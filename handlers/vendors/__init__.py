"""Vendor normalizers, one module per vendor.

Each module provides:
- ``SOURCE``: the name used on the wire (SQS attribute ``source``) and by the CLI;
- ``records(payload)``: the records inside a parsed JSON payload (API responses wrap arrays);
- ``detect(record)``: whether a record looks like this vendor's (for ``--source auto``);
- ``normalize(record, tenant, uid)``: a list of normalized event dicts, or ``Ignored``/``Rejected``;
- optionally ``parse_text(text)``: records from a non-JSON payload (CSV, W3C, syslog lines).
"""

from __future__ import annotations

from types import ModuleType

from handlers.vendors import (
    cisco_umbrella,
    crowdstrike,
    microsoft_defender,
    mimecast,
    netskope,
    okta,
    paloalto,
    proofpoint_tap,
    zscaler,
)

VENDORS: dict[str, ModuleType] = {
    m.SOURCE: m for m in (crowdstrike, zscaler, netskope, okta, microsoft_defender, proofpoint_tap, mimecast, cisco_umbrella, paloalto)
}


def names() -> list[str]:
    return sorted(VENDORS)


def detect(record: object) -> ModuleType | None:
    for vendor in VENDORS.values():
        if vendor.detect(record):
            return vendor
    return None


def detect_text(text: str) -> ModuleType | None:
    for vendor in VENDORS.values():
        detector = getattr(vendor, "detect_text", None)
        if detector and detector(text):
            return vendor
    return None
