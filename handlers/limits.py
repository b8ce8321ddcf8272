"""Step Functions' payload limit and every wrapper a payload passes through, in one place.

AWS limits each of these to 262,144 bytes of UTF-8 JSON, and fails the execution with
``States.DataLimitExceeded`` beyond it: an execution's input, every state's input and output, a
task's parameters as scheduled, and a task's result. A payload grows on its way:

- CheckEventsForRuleMatch is scheduled with ``{"FunctionName": "<arn>", "Payload": <execution
  input>}``: the batch (the execution input) must leave room for that wrapper;
- a Lambda task's result is ``{"ExecutedVersion", "Payload": <what the function returned>,
  "SdkHttpMetadata": {<headers>}, "SdkResponseMetadata", "StatusCode"}`` before ``OutputPath``;
- CheckEventsForRuleMatch's output is TriggerNotifications' input, scheduled in the same wrapper,
  and when TriggerNotifications fails its ``Catch`` adds ``{"error": {"Error", "Cause"}}`` to it
  (a Cause may hold up to 32,768 characters).

So a batch may weigh ``EXECUTION_INPUT_BYTES`` and a function's output ``TASK_OUTPUT_BYTES``;
what does not fit travels as a claim-check (``handlers.claim_check``).
"""

from __future__ import annotations

from typing import Final

STATE_PAYLOAD_BYTES: Final = 262_144  # AWS: execution input, state input/output, task parameters and results

# {"FunctionName":"<arn>","Payload":...}: a function ARN is at most ~140 bytes (partition
# aws-us-gov, a 64-character name); 256 leaves room for a qualifier-free ARN in any partition.
TASK_PARAMETERS_BYTES: Final = 256
# ExecutedVersion, SdkHttpMetadata (every response header, twice), SdkResponseMetadata, StatusCode.
TASK_RESULT_BYTES: Final = 4_096
# {"error":{"Error":"<name>","Cause":"<up to 32,768 characters>"}} added by a Catch (ResultPath $.error).
CAUGHT_ERROR_BYTES: Final = 33_792

EXECUTION_INPUT_BYTES: Final = STATE_PAYLOAD_BYTES - TASK_PARAMETERS_BYTES
TASK_OUTPUT_BYTES: Final = STATE_PAYLOAD_BYTES - max(TASK_RESULT_BYTES, TASK_PARAMETERS_BYTES + CAUGHT_ERROR_BYTES)
