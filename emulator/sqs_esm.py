"""SQS -> Lambda event source mappings that behave like the Lambda service's poller.

moto invokes the function inside SendMessage, ignores ``ReportBatchItemFailures`` and deletes or
releases the whole batch. AWS polls instead: it receives up to ``BatchSize`` messages (waiting up to
``MaximumBatchingWindowInSeconds`` to fill the batch), invokes the function, deletes the messages
that succeeded and leaves the failed ones invisible until the queue's visibility timeout passes; the
queue's redrive policy then moves a message that was received ``maxReceiveCount`` times to the DLQ
(moto's ReceiveMessage does that part). This module is that poller, talking to the embedded AWS over
its HTTP API like any other client.

Like Lambda's pollers it long-polls (``WaitTimeSeconds``): an idle poller asks the queue once per
``LONG_POLL_SECONDS`` and gets a message sent meanwhile at once, where short polls every 0.2 s cost
the emulator a fifth of a core per idle stack. The mappings' configurations are listed once per
``DISCOVERY_INTERVAL`` for all pollers, so a mapping disabled, enabled or changed takes effect
within ``DISCOVERY_INTERVAL + LONG_POLL_SECONDS`` (AWS, too, applies such changes after a delay).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from botocore.config import Config
from moto.sqs.models import Queue

from cli.redrive import lambda_record
from emulator import faults
from emulator.clients import session

log = logging.getLogger("emulator.esm")

LONG_POLL_SECONDS = 2  # ReceiveMessage's WaitTimeSeconds (AWS allows 0-20)
DISCOVERY_INTERVAL = 1.0  # how often the mappings are listed
FILL_INTERVAL = 0.2  # within a batching window, how often an unfilled batch asks the queue again
MAX_POLLERS = 3  # concurrent batches per mapping
_CLIENT_CONFIG = Config(retries={"max_attempts": 2}, read_timeout=960)  # an invocation may run 15 minutes


def disable_invoke_on_send() -> None:
    """Stop moto from invoking functions from inside SendMessage; the poller does it instead.

    moto's SendMessage invokes the functions in its queue's ``lambda_event_source_mappings``, which
    CreateEventSourceMapping fills and nothing else reads: every queue's is empty, whatever is put
    in it. (It was emptied around each SendMessage, under a lock shared by every queue's sends: a
    send waited for any other, and held that lock while it took its queue's own.)
    """
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)  # type: ignore[assignment]


def _queue_url(sqs: Any, queue_arn: str) -> str:
    _, _, _, region, account, name = queue_arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def failed_ids(response_payload: Any, message_ids: set[str]) -> set[str] | None:
    """The message ids a partial batch response reports as failed; None means 'the whole batch'.

    As in AWS, a response that names an unknown or empty id fails the whole batch.
    """
    if not isinstance(response_payload, dict) or not response_payload.get("batchItemFailures"):
        return set()
    failures = response_payload["batchItemFailures"]
    ids: set[str] = set()
    for item in failures if isinstance(failures, list) else [None]:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in message_ids:
            return None
        ids.add(ident)
    return ids


class EventSourcePoller:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        # One session for every client (a session loads the service models: ~0.1 s of CPU each);
        # clients are made by the discovery thread alone, as a session is not thread-safe.
        self.session = session(region)
        self.region = region
        self._stop = threading.Event()
        self._mappings: dict[str, dict[str, Any]] = {}  # UUID -> configuration, as last listed
        self._workers: dict[str, list[threading.Thread]] = {}

    def start(self) -> None:
        threading.Thread(target=self._discover, name="esm-discovery", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG)

    def _discover(self) -> None:
        lam = self._client("lambda")
        while not self._stop.wait(DISCOVERY_INTERVAL):
            try:
                listed = [m for page in lam.get_paginator("list_event_source_mappings").paginate() for m in page["EventSourceMappings"]]
            except Exception:  # the server is starting or stopping
                continue
            # Replaced whole: a poller whose mapping is no longer listed (deleted) stops.
            self._mappings = {m["UUID"]: m for m in listed if m.get("EventSourceArn", "").startswith("arn:aws:sqs:")}
            for uuid in set(self._workers) - set(self._mappings):
                del self._workers[uuid]
            for uuid, mapping in self._mappings.items():
                if uuid in self._workers:
                    continue
                # AWS polls with several concurrent batches (up to ScalingConfig.MaximumConcurrency);
                # here a few, as two cores allow.
                wanted = int((mapping.get("ScalingConfig") or {}).get("MaximumConcurrency") or MAX_POLLERS)
                workers = []
                for n in range(max(1, min(wanted, MAX_POLLERS))):
                    args = (uuid, self._client("sqs"), self._client("lambda"))
                    workers.append(threading.Thread(target=self._poll, args=args, name=f"esm-{uuid}-{n}", daemon=True))
                self._workers[uuid] = workers
                for worker in workers:
                    worker.start()

    def _poll(self, uuid: str, sqs: Any, lam: Any) -> None:
        queue_url = None
        while not self._stop.is_set():
            mapping = self._mappings.get(uuid)
            if mapping is None:
                return
            if not _enabled(mapping):
                self._stop.wait(DISCOVERY_INTERVAL)
                continue
            try:
                queue_url = queue_url or _queue_url(sqs, mapping["EventSourceArn"])
                messages = self._receive_batch(sqs, queue_url, mapping)
                if messages:
                    self._deliver(sqs, lam, queue_url, mapping, messages)
            except Exception:
                log.exception("event source mapping %s: polling failed", uuid)
                self._stop.wait(1)

    def _receive_batch(self, sqs: Any, queue_url: str, mapping: dict[str, Any]) -> list[dict[str, Any]]:
        batch_size = int(mapping.get("BatchSize") or 10)
        window = float(mapping.get("MaximumBatchingWindowInSeconds") or 0)
        # moto's long poll spins (a core, for the whole wait) while a FIFO queue's visible messages all
        # belong to groups in flight: Queue.wait_for_messages returns at once. FIFO queues are short-polled.
        fifo = mapping["EventSourceArn"].endswith(".fifo")
        messages = self._receive(sqs, queue_url, batch_size, 0 if fifo else LONG_POLL_SECONDS)
        if not messages and fifo:
            self._stop.wait(FILL_INTERVAL)
        deadline = time.time() + window  # the window opens with the first message
        while messages and len(messages) < batch_size:
            got = self._receive(sqs, queue_url, batch_size - len(messages), 0)
            messages.extend(got)
            if not got:
                if time.time() >= deadline:
                    break
                time.sleep(min(FILL_INTERVAL, max(0.0, deadline - time.time())))
        return messages

    @staticmethod
    def _receive(sqs: Any, queue_url: str, wanted: int, wait: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, wanted),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return got

    def _deliver(self, sqs: Any, lam: Any, queue_url: str, mapping: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        arn = mapping["EventSourceArn"]
        event = {"Records": [lambda_record(m, arn, self.region) for m in messages]}
        response = lam.invoke(FunctionName=mapping["FunctionArn"], Payload=json.dumps(event).encode("utf-8"))
        payload = json.loads(response["Payload"].read() or b"null")
        by_id = {m["MessageId"]: m for m in messages}
        if response.get("FunctionError"):
            log.warning("function error on a batch of %d from %s: %s", len(messages), arn, payload)
            return  # the whole batch stays invisible until the visibility timeout, then retries
        failed: set[str] = set()
        if "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []):
            reported = failed_ids(payload, set(by_id))
            if reported is None:
                return
            failed = reported
        again = set(faults.redeliver(mid for mid in by_id if mid not in failed))
        for mid in again:  # a fault plan's lost deletes: SQS delivers these processed messages again
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=by_id[mid]["ReceiptHandle"], VisibilityTimeout=0)
        done = [m for mid, m in by_id.items() if mid not in failed and mid not in again]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i : i + 10])],
            )


def _enabled(mapping: dict[str, Any]) -> bool:
    return mapping.get("State", "Enabled") in ("Enabled", "Creating", "Updating")
