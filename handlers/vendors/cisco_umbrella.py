"""Cisco Umbrella: DNS and proxy (SWG) logs as exported to S3 (quoted CSV, one record per line).

Exports wrap long lines: a quoted field may contain line breaks that are not part of the value
("htt\\nps://..."), so records are read with a CSV parser over the whole payload and line breaks
inside fields are removed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

from handlers.events import Header, build
from handlers.ocsf import HTTP_ACTIVITY, OTHER
from handlers.outcomes import Ignored, IgnoreReason, Rejected, RejectReason
from handlers.records import Context, Event, Line
from handlers.vendors.fields import clean, each, email, parse_time, split_list

SOURCE = "cisco_umbrella"
VENDOR = "Cisco"
_START = re.compile(r'^\s*"\d{4}-\d{2}-\d{2}')
_SECURITY = {"malware", "phishing", "command and control", "dns tunneling vpn", "cryptomining", "newly seen domains",
             "potentially harmful", "dynamic dns"}  # fmt: skip

records = each


def detect(record: Any) -> bool:
    return False  # Umbrella exports are CSV, never JSON


def detect_text(text: str) -> bool:
    return bool(_START.match(text)) and '","' in text


class _Lines:
    """The payload's physical lines, each with its line end, for the CSV reader; after a broken
    record, ``position`` is moved back to where the next record starts."""

    def __init__(self, text: str) -> None:
        self.lines = io.StringIO(text).readlines()  # split at "\n" only: U+2028 and the like stay in their field
        self.position = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def parse_text(payload: str) -> Iterator[Line]:
    lines = _Lines(payload.strip())
    reader = csv.reader(lines, delimiter=",", quotechar='"', skipinitialspace=True, strict=True)
    while True:
        start = lines.position
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # An unclosed quote reads on into the records after it, until the CSV breaks: read on
            # from the first of them (a line starting with a quoted timestamp), so they survive.
            read = range(start + 1, lines.position)
            lines.position = next((n for n in read if _START.match(lines.lines[n])), lines.position)
            raw = "".join(lines.lines[start : lines.position]).strip()
            yield Line(raw, None, start + 1, f"not Umbrella CSV: {exc}")
            continue
        if not row or not any(row):
            continue
        fields = [value.replace("\r", "").replace("\n", "") for value in row]
        yield Line(",".join(f'"{v}"' for v in fields), {"columns": fields}, start + 1)


def _identity(value: str) -> dict[str, Any] | None:
    if not value:
        return None
    match = re.search(r"\(([^()\s]+@[^()\s]+)\)", value)
    address = match.group(1) if match else email(value)
    name = value[: match.start()].strip() if match else value
    return clean({"email_addr": email(address), "name": name})


def normalize(record: Any, ctx: Context) -> list[Event]:
    if not isinstance(record, Line) or record.fields is None:
        raise Rejected(RejectReason.WRONG_TYPES, "Umbrella records are CSV lines, not JSON")
    columns: list[str] = record.fields["columns"]
    if len(columns) < 10:
        raise Rejected(RejectReason.MALFORMED, f"an Umbrella record has at least 10 columns, got {len(columns)}")
    time_ms = parse_time(columns[0], "Timestamp")
    if len(columns) <= 14:
        # DNS: Timestamp, Identity, Identities, Internal IP, External IP, Action, QueryType, ResponseCode, Domain, Categories, ...
        action, categories = columns[5].lower(), split_list(columns[9])
        risky = any(c.lower() in _SECURITY for c in categories or [])
        domain = columns[8].rstrip(".")
        if not domain:
            raise Ignored(IgnoreReason.NOT_EVENT, "DNS record without a domain")
        return [
            build(
                ctx,
                Header(VENDOR, "Umbrella DNS", time_ms, "dns"),
                class_uid=4003,
                activity_id=1,
                activity_name="Query",
                severity_id=3 if risky else 1,
                disposition_id=2 if action == "blocked" else 1 if action == "allowed" else None,
                user=_identity(columns[1]),
                query=clean({"hostname": domain, "type": columns[6].split("(")[-1].rstrip(")") or None}),
                url=clean({"hostname": domain, "categories": categories}),
                src_endpoint=clean({"ip": columns[3] or None}),
                message=columns[7] or None,
            )
        ]
    # Proxy: Timestamp, Identities, Internal IP, External IP, Destination IP, Content Type, Verdict, URL, Referer,
    # User Agent, Status, Request size, Response size, Body size, SHA256, Categories, AV detections, ...
    verdict, categories = columns[6].upper(), split_list(columns[15])
    method = next((c for c in columns[22:] if c in HTTP_ACTIVITY), "")
    detection = columns[16]
    return [
        build(
            ctx,
            Header(VENDOR, "Umbrella Secure Web Gateway", time_ms, "proxy"),
            class_uid=4002,
            activity_id=HTTP_ACTIVITY.get(method, OTHER),
            activity_name=method or None,
            severity_id=3 if detection or any(c.lower() in _SECURITY for c in categories or []) else 1,
            disposition_id=2 if verdict == "BLOCKED" else 1 if verdict == "ALLOWED" else None,
            user=_identity(columns[1]),
            url=clean({"url_string": columns[7] or None, "categories": categories}),
            src_endpoint=clean({"ip": columns[2] or None}),
            dst_endpoint=clean({"ip": columns[4] or None}),
            malware=[{"name": detection}] if detection else None,
        )
    ]
