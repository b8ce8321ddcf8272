"""The embedded AWS: moto in server mode on 127.0.0.1 plus the shims coachflow needs.

- Lambda invocations run our handlers (``emulator.lambda_runtime``);
- Step Functions executions really run (moto's ``execute_state_machine``);
- ``ValidateStateMachineDefinition`` is answered (``emulator.sfn_validate``);
- SQS -> Lambda event source mappings poll like AWS (``emulator.sqs_esm``);
- EventBridge Scheduler schedules fire (``emulator.scheduler``);
- small API gaps the AWS provider needs are filled (``emulator.api_gaps``);
- AWS's limits where moto is lenient are enforced (``emulator.strict``);
- moto's SQS scales with a queue's depth (``emulator.scale``);
- faults are injected on demand (``emulator.faults``);
- the requests worth a line are logged (``emulator.requestlog``);
- a retried call whose answer the caller lost gets that answer again (``emulator.retries``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from emulator.clients import REGION


def serve(port: int, code_root: Path, region: str = REGION, faults_file: Path | None = None, fault_log: Path | None = None) -> None:
    # moto's Step Functions interpreter calls Lambda over HTTP on localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    os.environ.setdefault("MOTO_LAMBDA_STUB_ECR", "TRUE")  # images are "pulled" by digest, not stored
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from emulator import api_gaps, faults, lambda_runtime, requestlog, retries, scale, scheduler, sfn_validate, sqs_esm, strict

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    endpoint = f"http://127.0.0.1:{port}"
    runtime = lambda_runtime.install(lambda_runtime.RuntimeSettings(endpoint_url=endpoint, code_root=str(code_root)))
    sfn_validate.install()
    api_gaps.install()
    scale.install()
    strict.install()
    requestlog.install()  # inside the fault layer: what it injects is in the fault log, not here
    faults.install(faults_file, fault_log)
    retries.install()  # outside the fault layer: a retry after an injected error runs again
    sqs_esm.disable_invoke_on_send()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the demo
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    poller = sqs_esm.EventSourcePoller(endpoint, region)
    poller.start()
    ticker = scheduler.Scheduler(endpoint, region)
    ticker.start()
    print(f"coachflow embedded AWS listening on {endpoint}", flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    ticker.stop()
    poller.stop()
    runtime.shutdown()
    server.stop()
    logging.shutdown()
