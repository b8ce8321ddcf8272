"""AWS clients and configuration for the Lambda adapters.

Clients are created on first use, not at import: every new execution environment pays for what it
imports, and the pure core never needs a client at all. Configuration comes from the environment
variables Terraform sets on each function.
"""

from __future__ import annotations

import functools
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
