"""Lambda ``normalize``: raw-events SQS batch -> normalized events -> StartExecution per batch.

Each SQS message carries one raw vendor payload in its body and its envelope in message attributes:
``tenant_id`` (required) and ``source`` (a vendor name, or ``auto``). Per message (Powertools
BatchProcessor, partial batch responses):

1. every record of the payload gets one outcome (``handlers.ingest``);
2. the normalized events of the whole SQS batch are grouped per tenant into byte-capped batches
   (``handlers.batching``) and each batch starts one execution with a deterministic name;
3. rejected records go to the dead-letter queue with their reason, ignored ones are logged;
4. a message whose execution could not be started, or whose rejects could not be dead-lettered,
   is reported as a batch item failure so SQS redelivers it (and, after maxReceiveCount, moves it
   to the DLQ itself). Redelivery is safe: execution names are deterministic and StartExecution is
   idempotent, and downstream state is keyed by event uid.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import aws, batching, claim_check, tenant_settings
from handlers.ingest import SOURCE_ATTRIBUTE, TENANT_ATTRIBUTE, envelope, normalize_payload, reject_payload
from handlers.outcomes import KINDS, NormalizedOutcome, Outcome, RejectedOutcome, RejectReason
from handlers.tenancy import TENANT_ID
from handlers.tracing import annotate, tracer

DLQ_INLINE_BYTES = 200 * 1024  # coachflow's queues take messages of at most 256 KiB, attributes included
# Characters an SQS message may not hold (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html):
# a record can: JSON's "\uffff" escape reads as U+FFFF, and a lone surrogate survives json.loads.
SQS_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SQS_BATCH_BYTES, SQS_BATCH_ENTRIES = 262_144, 10  # SendMessageBatch: all messages together, and how many
logger = Logger()
metrics = Metrics()
metrics.set_default_dimensions(**aws.metric_dimensions())
processor = BatchProcessor(event_type=EventType.SQS)
SETTINGS_TTL = 60.0
_settings_cache: dict[str, tuple[float, tenant_settings.TenantSettings]] = {}


def _attribute(record: SQSRecord, name: str) -> str | None:
    value = record.message_attributes[name]
    return value.string_value if value is not None else None


def _settings(tenant: str) -> tenant_settings.TenantSettings:
    """The tenant's settings, cached per warm function for SETTINGS_TTL seconds (producers rarely change)."""
    cached = _settings_cache.get(tenant)
    if cached is None or cached[0] < time.monotonic():
        settings = tenant_settings.read(aws.resource("dynamodb").Table(aws.setting("RULES_TABLE")), tenant)
        cached = _settings_cache[tenant] = (time.monotonic() + SETTINGS_TTL, settings)
    return cached[1]


def _ingest(record: SQSRecord) -> list[Outcome]:
    sent = record.attributes.sent_timestamp
    received = int(sent) if sent else None
    tenant, source = _attribute(record, TENANT_ATTRIBUTE), _attribute(record, SOURCE_ATTRIBUTE)
    if tenant and TENANT_ID.match(tenant):
        # The envelope names the tenant; only the tenant's registered producers may (docs/guarantees.md).
        sender = record.attributes.sender_id
        if not _settings(tenant).allows(sender):
            detail = f"sender {sender!r:.80} is not a registered producer of tenant {tenant}"
            return reject_payload(record.body, source, RejectReason.UNREGISTERED_PRODUCER, detail)
    return normalize_payload(record.body, source, tenant, received)


def _claim_check(tenant: str) -> batching.ClaimCheck:
    """Events too big for any batch go to the claims bucket; the batch carries a pointer."""

    def store(uid: str, event_json: str) -> str:
        body = event_json.encode("utf-8")
        return claim_check.put(aws.claims_bucket(), claim_check.Kind.EVENTS, tenant, f"{uid}.json", body, uid=uid).to_json()

    return store


@tracer.capture_method(capture_response=False)  # no return value is traced (handlers.tracing)
def _start(batch: batching.Batch) -> str:
    annotate(batch_id=batch.batch_id, events=len(batch.uids))  # a batch's id finds the invocation that started it
    sfn = aws.client("stepfunctions")
    try:
        arn: str = sfn.start_execution(stateMachineArn=aws.setting("STATE_MACHINE_ARN"), name=batch.execution_name, input=batch.payload)[
            "executionArn"
        ]
        return arn
    except sfn.exceptions.ExecutionAlreadyExists:
        # The same events were already evaluated (a redelivered message): nothing to do.
        logger.info("batch already evaluated", extra={"execution_name": batch.execution_name})
        return "already-exists"


def _text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _dead_letter(record: SQSRecord, rejected: list[tuple[int, RejectedOutcome]]) -> None:
    """Each rejected record to the dead-letter queue, with its reason and where it came from: the
    message and the record's place in it (so a record dead-lettered twice, when SQS delivered its
    message twice, is recognisably the same record)."""
    tenant = _attribute(record, TENANT_ATTRIBUTE) or ""
    entries = []
    for n, (index, outcome) in enumerate(rejected):
        attributes = {
            **envelope(tenant[:64] or None, outcome.source),
            "rejection_reason": _text(outcome.reason),
            "rejection_detail": _text(SQS_FORBIDDEN.sub("\ufffd", (outcome.detail or "-")[:1000])),
            "original_message_id": _text(record.message_id),
            "record_index": {"DataType": "Number", "StringValue": str(index)},
        }
        body = outcome.raw or record.body
        raw = body.encode("utf-8", "surrogatepass")
        if len(raw) > DLQ_INLINE_BYTES or SQS_FORBIDDEN.search(body):
            # Too big to travel in a message, or holding what SQS refuses: keep it in S3, byte for
            # byte, and dead-letter a pointer to it.
            pointer = claim_check.put(aws.claims_bucket(), claim_check.Kind.REJECTED, tenant, f"{record.message_id}-{index}.txt", raw)
            attributes["claim_check"] = _text(pointer.url)
            body = pointer.to_json()
        entries.append({"Id": str(n), "MessageBody": body, "MessageAttributes": attributes})
    sqs = aws.client("sqs")
    for chunk in sqs_batches(entries):
        response = sqs.send_message_batch(QueueUrl=aws.setting("REJECTED_QUEUE_URL"), Entries=chunk)
        if response.get("Failed"):
            raise RuntimeError(f"could not dead-letter {len(response['Failed'])} rejected records")


def message_bytes(entry: dict[str, Any]) -> int:
    """What SQS counts of a message: its body and every attribute's name, type and value."""
    size = len(entry["MessageBody"].encode("utf-8", "surrogatepass"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(value.get("StringValue", "").encode("utf-8", "surrogatepass"))
    return size


def sqs_batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """SendMessageBatch requests: at most 10 entries and 256 KiB together each (a single message is
    at most 256 KiB already: DLQ_INLINE_BYTES plus its attributes)."""
    batches: list[list[dict[str, Any]]] = []
    used = 0
    for entry in entries:
        size = message_bytes(entry)
        if not batches or len(batches[-1]) == SQS_BATCH_ENTRIES or used + size > SQS_BATCH_BYTES:
            batches.append([])
            used = 0
        batches[-1].append(entry)
        used += size
    return batches


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # no return value is traced (handlers.tracing); this one names messages only
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results: dict[str, list[Outcome]] = {}
    with processor(records=event["Records"], handler=_ingest):
        with tracer.provider.in_subsegment("## ingest"):  # every record parsed and normalized (or not)
            processed = processor.process()
        # message id -> the record, for reading its envelope and reporting failures
        records = {raw["messageId"]: SQSRecord(raw) for raw in event["Records"]}
        for status, result, raw in processed:
            if status == "success":
                results[raw["messageId"]] = result

        failed: set[str] = set()
        by_tenant: dict[str, list[batching.Item]] = defaultdict(list)
        owners: dict[str, set[str]] = defaultdict(set)  # event uid -> message ids that carried it
        for message_id, outcomes in results.items():
            tenant = _attribute(records[message_id], TENANT_ATTRIBUTE) or ""
            for outcome in outcomes:
                if isinstance(outcome, NormalizedOutcome):
                    by_tenant[tenant].append(batching.Item(outcome.uid, outcome.time, outcome.event_json))
                    owners[outcome.uid].add(message_id)

        for tenant, items in by_tenant.items():
            for batch in batching.plan(tenant, items, claim_check=_claim_check(tenant)):
                logger.append_keys(
                    correlation_id=batch.batch_id,
                    messages={
                        m: {"sent_ms": records[m].attributes.sent_timestamp, "event_uids": [u for u in batch.uids if m in owners[u]]}
                        for m in sorted({m for u in batch.uids for m in owners[u]})
                    },
                )
                try:
                    arn = _start(batch)
                except Exception:
                    logger.exception("could not start an execution", extra={"execution_name": batch.execution_name})
                    for uid in batch.uids:
                        failed |= owners[uid]
                    continue
                metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=1)
                metrics.add_metric(name="BatchBytes", unit=MetricUnit.Bytes, value=batch.size)
                logger.info(
                    "batch started",
                    extra={"tenant_id": tenant, "execution": arn, "events": len(batch.uids), "bytes": batch.size},
                )
        logger.append_keys(correlation_id=None, messages=None)  # a batch's keys end with it (None: left out of log lines)

        for message_id, outcomes in results.items():
            logger.append_keys(tenant_id=_attribute(records[message_id], TENANT_ATTRIBUTE))  # whose records these lines are
            rejected = [(n, o) for n, o in enumerate(outcomes) if isinstance(o, RejectedOutcome)]
            if rejected and message_id not in failed:
                try:
                    _dead_letter(records[message_id], rejected)
                except Exception:
                    logger.exception("could not dead-letter rejected records", extra={"message_id": message_id})
                    failed.add(message_id)
            if message_id in failed:
                continue  # its outcomes are recorded when the redelivered message succeeds
            for n, outcome in enumerate(outcomes):
                if not isinstance(outcome, NormalizedOutcome):
                    logger.info(
                        f"record {outcome.kind}",
                        extra={
                            "message_id": message_id,
                            "record_index": n,
                            "outcome": outcome.kind,
                            "reason": outcome.reason,
                            "detail": outcome.detail,
                            "source": outcome.source,
                        },
                    )
        logger.append_keys(tenant_id=None)

        totals: Counter[str] = Counter({kind: 0 for kind in KINDS})
        for message_id, outcomes in results.items():
            if message_id in failed:
                continue  # counted when the redelivered message succeeds
            totals.update(outcome.kind for outcome in outcomes)
        for kind, value in totals.items():
            metrics.add_metric(name=f"Records{kind.capitalize()}", unit=MetricUnit.Count, value=value)
        annotate(messages=len(records), failed_messages=len(failed), **{f"records_{kind}": value for kind, value in totals.items()})

        for message_id in failed:
            error = RuntimeError(f"message {message_id} could not be fully handed on; SQS will redeliver it")
            processor.failure_handler(records[message_id], (RuntimeError, error, None))
    response: dict[str, Any] = dict(processor.response())
    return response
