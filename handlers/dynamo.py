"""DynamoDB idioms the stages share: every page of a query, and writes guarded by a condition."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from botocore.exceptions import ClientError


def pages(table: Any, **query: Any) -> Iterator[dict[str, Any]]:
    """Every page of ``table.query(**query)``; stop iterating to stop reading."""
    while True:
        page = table.query(**query)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def conditional(write: Callable[..., Any], **request: Any) -> bool:
    """Run a conditional write (put_item, update_item); False when its condition does not hold."""
    try:
        write(**request)
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
