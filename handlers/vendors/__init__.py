"""Vendor normalizers, one module (or package, for CrowdStrike's feeds) per vendor.

Each fulfils ``handlers.records.Vendor`` (``SOURCE``, ``records``, ``detect``, ``normalize``); the
vendors that also deliver text lines fulfil ``TextVendor`` (``detect_text``, ``parse_text``). The
registry below is typed with those protocols, so mypy checks every module against the contract.
Vendors build events with ``handlers.events.build`` and read fields with ``vendors.fields``; they
never import the ingest stage.
"""

from __future__ import annotations

from handlers.records import TextVendor, Vendor
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

# Detection order for ``auto``: the first vendor whose detect() accepts a record takes it.
_JSON: tuple[Vendor, ...] = (crowdstrike, zscaler, netskope, okta, microsoft_defender, proofpoint_tap, mimecast)
_TEXT: tuple[TextVendor, ...] = (netskope, cisco_umbrella, paloalto)

VENDORS: dict[str, Vendor] = {v.SOURCE: v for v in (*_JSON, *_TEXT)}
TEXT_VENDORS: dict[str, TextVendor] = {v.SOURCE: v for v in _TEXT}


def names() -> list[str]:
    return sorted(VENDORS)


def detect(record: object) -> Vendor | None:
    for vendor in VENDORS.values():
        if vendor.detect(record):
            return vendor
    return None


def detect_text(text: str) -> TextVendor | None:
    for vendor in TEXT_VENDORS.values():
        if vendor.detect_text(text):
            return vendor
    return None
