"""AWS clients and configuration for the Lambda adapters.

Clients are created on first use, not at import: every new execution environment pays for what it
imports, and the pure core never needs a client at all. Configuration comes from the environment
variables Terraform sets on each function.
"""

from __future__ import annotations

import functools
import json
import os
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


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set on this function")
    return value


def get_json(bucket: str, key: str) -> Any:
    """A claim-check: a JSON document stored in S3 because it did not fit a payload."""
    return json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def put_bytes(bucket: str, key: str, body: bytes) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
