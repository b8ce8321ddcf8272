"""Lambda ``sweep``: start a re-evaluation for every tenant with notifications due.

EventBridge Scheduler invokes it every few minutes (``sweep_schedule``). It asks the ledger's sparse
index which tenants have due work (failed deliveries whose backoff passed, deferred ones, leases
whose deliverer died: ``ledger.due_tenants``) and starts the state machine in re-evaluation mode
for each, so no tenant waits on a schedule of its own. Execution names are deterministic per tenant
and tick: a tick delivered twice starts each re-evaluation once.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import aws
from handlers.ledger import due_tenants
from handlers.tracing import annotate, tracer

logger = Logger()
metrics = Metrics()
metrics.set_default_dimensions(**aws.metric_dimensions())


def _tick(event: dict[str, Any]) -> str:
    """The schedule's tick (its scheduled time, digits only), else now: part of execution names."""
    scheduled = str(event.get("scheduled_time") or "")
    digits = re.sub(r"\D", "", scheduled)[:14]
    return digits if len(digits) == 14 else time.strftime("%Y%m%d%H%M%S", time.gmtime())


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # no return value is traced (handlers.tracing); this one names tenants only
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tenants = sorted(due_tenants(aws.resource("dynamodb").Table(aws.setting("STATE_TABLE")), int(time.time())))
    tick = _tick(event)
    sfn = aws.client("stepfunctions")
    started = []
    for tenant in tenants:
        name = f"sweep-{tenant}-{tick}"
        payload = {"mode": "reevaluate", "tenant_id": tenant, "scheduled_time": tick}
        try:
            sfn.start_execution(stateMachineArn=aws.setting("STATE_MACHINE_ARN"), name=name, input=json.dumps(payload))
            started.append(tenant)
        except sfn.exceptions.ExecutionAlreadyExists:
            pass  # this tick was delivered twice: the re-evaluation runs already
    metrics.add_metric(name="SweepTenantsDue", unit=MetricUnit.Count, value=len(tenants))
    logger.info("sweep", extra={"due": len(tenants), "started": len(started)})
    annotate(due=len(tenants), started=len(started))
    return {"due": tenants, "started": started}
