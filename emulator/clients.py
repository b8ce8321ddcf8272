"""Clients of the embedded AWS. It accepts any credentials; these dummy ones are used everywhere."""

from __future__ import annotations

from typing import Any

import boto3

REGION = "us-east-1"


def session(region: str = REGION) -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


def client(service: str, endpoint_url: str, region: str = REGION, **kwargs: Any) -> Any:
    return session(region).client(service, endpoint_url=endpoint_url, **kwargs)
