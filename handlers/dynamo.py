"""DynamoDB idioms the stores share: the table interface they use, every page of a query, and
writes guarded by a condition. Tables are passed in (a boto3 ``Table`` in Lambda), so the stores
never create clients themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from botocore.exceptions import ClientError

# Why a transaction was cancelled when another writer got there first (retry after re-reading).
_LOST_RACE = {"ConditionalCheckFailed", "TransactionConflict"}


class Table(Protocol):
    """The part of boto3's DynamoDB ``Table`` the stores use."""

    def get_item(self, **request: Any) -> dict[str, Any]: ...

    def put_item(self, **request: Any) -> dict[str, Any]: ...

    def update_item(self, **request: Any) -> dict[str, Any]: ...

    def delete_item(self, **request: Any) -> dict[str, Any]: ...

    def query(self, **request: Any) -> dict[str, Any]: ...

    def batch_writer(self) -> Any: ...

    @property
    def name(self) -> str: ...

    @property
    def meta(self) -> Any: ...  # meta.client: the low-level client, for transactions


def pages(table: Table, **query: Any) -> Iterator[dict[str, Any]]:
    """Every page of ``table.query(**query)``; stop iterating to stop reading."""
    while True:
        page = table.query(**query)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def conditional(write: Callable[..., Any], **request: Any) -> dict[str, Any] | None:
    """Run a conditional write (put_item, update_item): its response, or None when its condition
    does not hold."""
    try:
        response: dict[str, Any] = write(**request)
        return response
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise


def transact(table: Table, *operations: dict[str, dict[str, Any]]) -> bool:
    """Write all of ``operations`` or none (TransactWriteItems on ``table``); False when a condition
    failed or a concurrent transaction conflicted, so the caller re-reads and decides again.

    Operations are written like the Table API's, with plain Python values: ``{"Put": {"Item": {...},
    "ConditionExpression": ...}}``, ``{"Update": {"Key": ..., "UpdateExpression": ...}}``,
    ``{"ConditionCheck": ...}`` (the client of a boto3 Table resource serializes them)."""
    items = [{kind: {"TableName": table.name, **request}} for operation in operations for kind, request in operation.items()]
    try:
        table.meta.client.transact_write_items(TransactItems=items)
        return True
    except ClientError as exc:
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []} - {"None", None}
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException" and reasons and reasons <= _LOST_RACE:
            return False
        raise


def record_and_move_marker(table: Table, item: dict[str, Any], version: int, assign: str, values: dict[str, Any]) -> bool:
    """Put ``item`` (new: it must not exist) and move its partition's ``marker`` from ``version``
    (0: no marker yet) to the next, applying ``assign`` (``SET version = :next, ...``, with
    ``values``), in one transaction: False when either condition failed (a concurrent writer moved
    the marker first), so the caller re-reads and decides again. The decisions of thresholds and of
    coaching are made this way: of two evaluations reading the same marker, one commits."""
    values = {**values, ":next": version + 1}
    if version:
        unchanged, values[":version"] = "version = :version", version
    else:
        unchanged = "attribute_not_exists(version)"
    return transact(
        table,
        {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"Key": {"pk": item["pk"], "sk": "marker"}, "UpdateExpression": assign, "ConditionExpression": unchanged,
                    "ExpressionAttributeValues": values}},
    )  # fmt: skip
