"""X-Ray tracing of the Lambda adapters: the one Powertools ``Tracer`` they share, and what never
goes into a trace.

Anyone allowed to read X-Ray reads every trace, so a trace shows the shape of an invocation and no
content: subsegment names and timings, the annotations the adapters set on purpose (tenant id,
batch id, mode, channel, counts: ``annotate``) and the AWS calls (only botocore is patched; X-Ray
records the operation, table and queue names, S3 keys and counts, never an item, a body or a
message). Kept out:

- return values: every traced handler and method says ``capture_response=False`` (they hold
  events and matches);
- segment metadata (where Powertools puts responses and errors) and exception messages (a message
  may quote what failed: SES refuses a message naming the recipients' addresses): the emitter drops
  both before a segment leaves the process; an exception's type and stack frames stay;
- URLs: nothing but botocore is patched; a delivery to a tenant's receiver is its ``## deliver``
  subsegment, which names the channel, never the URL (Slack's and Teams' carry their secret in the
  path), and no trace header is sent to the receivers.

Outside Lambda (no ``LAMBDA_TASK_ROOT``: tests, the emulator, which also sets
``POWERTOOLS_TRACE_DISABLED``) Powertools disables the tracer: nothing is patched or sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools import Tracer
from aws_xray_sdk.core import xray_recorder  # type: ignore[import-untyped]
from aws_xray_sdk.core.emitters.udp_emitter import PROTOCOL_DELIMITER, PROTOCOL_HEADER, UDPEmitter  # type: ignore[import-untyped]

log = logging.getLogger(__name__)


def redacted(document: Any) -> Any:
    """A segment document (``Entity.to_dict()``) without metadata and without exception messages,
    at any depth."""
    if isinstance(document, list):
        return [redacted(item) for item in document]
    if not isinstance(document, dict):
        return document
    kept = {key: redacted(value) for key, value in document.items() if key != "metadata"}
    cause = kept.get("cause")
    if isinstance(cause, dict) and isinstance(cause.get("exceptions"), list):
        cause["exceptions"] = [{k: v for k, v in e.items() if k != "message"} for e in cause["exceptions"] if isinstance(e, dict)]
    return kept


class RedactingEmitter(UDPEmitter):  # type: ignore[misc]
    """The X-Ray SDK's emitter (UDP to ``AWS_XRAY_DAEMON_ADDRESS``), sending documents ``redacted``."""

    def send_entity(self, entity: Any) -> None:
        try:
            document = json.dumps(redacted(entity.to_dict()), default=str)
            self._send_data(f"{PROTOCOL_HEADER}{PROTOCOL_DELIMITER}{document}")
        except Exception:  # as the SDK's own emitter: tracing never fails an invocation
            log.exception("could not send a trace segment")


tracer = Tracer(patch_modules=["botocore"])
xray_recorder.emitter = RedactingEmitter()  # every segment and subsegment leaves through it


def annotate(**values: str | int | bool | None) -> None:
    """Searchable annotations on the current (sub)segment; None values are left out. Only ids and
    counts: never event content, addresses or secrets."""
    for key, value in values.items():
        if value is not None:
            tracer.put_annotation(key, value)  # type: ignore[arg-type]  # numbers.Number: int is one at run time
