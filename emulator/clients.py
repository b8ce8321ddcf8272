"""Clients of the embedded AWS. It accepts any credentials; these dummy ones are used everywhere."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"


def session(region: str = REGION) -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


@functools.cache
def client(service: str, endpoint_url: str, region: str = REGION, config: Config | None = None) -> Any:
    """One client per service, endpoint, region and configuration in a process (clients are
    thread-safe): making one from a new session, which reloads the service models, costs ~0.1 s of
    CPU, more than the requests most callers make with it. A trace that made one per execution spent
    36 of its 39 s doing so (300 executions)."""
    return session(region).client(service, endpoint_url=endpoint_url, config=config)
