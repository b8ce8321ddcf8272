"""Tenant ids: what a valid one looks like, and the tenant a Lambda input belongs to."""

from __future__ import annotations

import re
from typing import Any

# \A and \Z, not ^ and $: "$" also matches before a final newline, and "acme\n" is no tenant id.
TENANT_ID = re.compile(r"\A[a-z0-9][a-z0-9-]{0,31}\Z")


def tenant_of(payload: dict[str, Any]) -> str:
    """The tenant a Lambda input belongs to; a missing or malformed one is a caller bug."""
    tenant = payload.get("tenant_id")
    if not isinstance(tenant, str) or not TENANT_ID.match(tenant):
        raise ValueError(f"input has no valid tenant_id: {tenant!r:.40}")
    return tenant
