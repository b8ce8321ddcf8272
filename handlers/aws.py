"""AWS clients and configuration for the Lambda adapters.

Clients are created on first use, not at import: every new execution environment pays for what it
imports, and the pure core never needs a client at all. Configuration comes from the environment
variables Terraform sets on each function.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)


@functools.cache
def resource(service: str) -> Any:
    return boto3.resource(service, config=_CONFIG)


def metric_dimensions() -> dict[str, str]:
    """The dimensions every function's EMF metrics carry beside Powertools' ``service``: which
    environment and which function (the dashboard and the alarms select on them)."""
    return {
        "environment": os.environ.get("COACHFLOW_ENV", "local"),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
    }


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set on this function")
    return value


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket as ``claim_check.ObjectStore``."""

    name: str

    def put(self, key: str, body: bytes, content_type: str) -> None:
        client("s3").put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes:
        body: bytes = client("s3").get_object(Bucket=self.name, Key=key)["Body"].read()
        return body

    def keys(self, prefix: str, start_after: str = "") -> Iterator[tuple[str, float]]:
        """(key, last modified as epoch seconds) of every object under ``prefix`` after
        ``start_after``, in key order, a page at a time: stop iterating to stop listing."""
        request: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix, **({"StartAfter": start_after} if start_after else {})}
        for page in client("s3").get_paginator("list_objects_v2").paginate(**request):
            for item in page.get("Contents", ()):
                yield item["Key"], item["LastModified"].timestamp()


def claims_bucket() -> Bucket:
    """The environment's claim-check bucket."""
    return Bucket(setting("CLAIMS_BUCKET"))
