"""Command line of the embedded AWS.

python -m emulator serve [--port 4566] [--code-root .] [--faults PLAN] [--fault-log FILE]
python -m emulator fire-schedule NAME [--group default] [--endpoint URL]
python -m emulator webhook [--port 0] --record FILE [--port-file FILE] [--faults FILE | --faults-json JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run moto with coachflow's shims until SIGTERM")
    serve.add_argument("--port", type=int, default=int(os.environ.get("COACHFLOW_EMULATOR_PORT", 4566)))
    serve.add_argument("--code-root", type=Path, default=ROOT, help="what the Lambda image contains")
    serve.add_argument("--faults", type=Path, help="a fault plan (JSON/YAML, emulator.faults), re-read when it changes")
    serve.add_argument("--fault-log", type=Path, help="JSON lines: every fault injected")
    fire = sub.add_parser("fire-schedule", help="deliver an EventBridge Scheduler schedule's target now")
    fire.add_argument("name")
    fire.add_argument("--group", default="default")
    fire.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
    hook = sub.add_parser("webhook", help="an HTTP receiver for coaching notifications")
    hook.add_argument("--port", type=int, default=0)
    hook.add_argument("--record", type=Path, required=True, help="JSON-lines file of what was received")
    hook.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    plan = hook.add_mutually_exclusive_group()  # see emulator/webhook_receiver.py for the plan's format
    plan.add_argument("--faults", type=Path, metavar="FILE", help="misbehave on purpose by this fault plan (JSON), for soak tests")
    plan.add_argument("--faults-json", metavar="JSON", help="the fault plan inline")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from emulator.server import serve as run

        run(args.port, args.code_root.resolve(), faults_file=args.faults, fault_log=args.fault_log)
        return 0
    if args.command == "fire-schedule":
        from emulator.scheduler import fire_now

        print(json.dumps({"schedule": args.name, "started": fire_now(args.endpoint, args.name, args.group)}))
        return 0
    if args.command == "webhook":
        from emulator.webhook_receiver import FaultPlan, FaultPlanError, serve_forever

        faults = None
        try:
            if args.faults is not None:
                faults = FaultPlan.from_json(args.faults.read_text(encoding="utf-8"))
            elif args.faults_json is not None:
                faults = FaultPlan.from_json(args.faults_json)
        except OSError as exc:
            hook.error(f"--faults {args.faults}: {exc.strerror or exc}")
        except FaultPlanError as exc:  # before listening: a receiver misbehaving by a plan nobody meant is worse than none
            hook.error(str(exc))
        serve_forever(args.port, args.record, args.port_file, faults)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
