"""``./build.sh up|down|lint|fire-schedule``: the long-lived local environment and Terraform checks."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

from emulator.stack import DEFAULT_PORT, INSTANCE, ROOT, STATE_ROOT, LocalEnvironment, free_port, stop_group, terraform_env, terraform_init

ENVIRONMENTS = ("local", "dev", "staging", "prod")


class _Progress:
    """Terraform's apply as it goes, one line per resource it finished: '[12/60] created X in 25s'."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        planned = re.search(r"Plan: (\d+) to add", line)
        if planned:
            self.total = int(planned.group(1))
            print(f"   terraform: {self.total} resources to create", flush=True)
        finished = re.match(r"(\S+): Creation complete after (\S+)", line)
        if finished:
            self.done += 1
            print(f"   [{self.done}/{self.total or '?'}] {finished.group(1)} ({finished.group(2)})", flush=True)
        elif line.startswith(("Error", "│ Error")):
            print(f"   {line}", flush=True)


def up() -> int:
    port = int(os.environ.get("COACHFLOW_EMULATOR_PORT", DEFAULT_PORT))
    env = LocalEnvironment(name=INSTANCE, port=port)
    print(f"== starting the embedded AWS on {env.endpoint}", flush=True)
    env.start()
    receiver = None
    try:
        # A receiver for the tenants' webhooks, so that what the hints below send arrives somewhere.
        record, hook_port = env.workdir / "received.jsonl", free_port()
        record.unlink(missing_ok=True)
        # Its output to a file, never to ours: it outlives this command, and an inherited pipe would keep
        # whoever reads ours (a caller capturing the output) waiting for it.
        with open(env.workdir / "receiver.log", "w") as log:
            receiver = subprocess.Popen([sys.executable, "-m", "emulator", "webhook", "--port", str(hook_port), "--record", str(record)],
                                        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
        (env.workdir / "receiver.pid").write_text(str(receiver.pid))
        print("== terraform apply of terraform/environments/local", flush=True)
        started = time.monotonic()
        outputs = env.apply(progress=_Progress())
        print(f"   applied in {time.monotonic() - started:.0f}s", flush=True)
        # The demo tenant's webhook signing secret (random, only in the embedded Secrets Manager).
        env.client("secretsmanager").create_secret(Name=f"{outputs['webhook_secret_prefix']}acme", SecretString=secrets.token_hex(32))
    except Exception:
        if receiver is not None:
            stop_group(receiver.pid)
        env.stop()
        raise
    (env.workdir / "endpoint").write_text(env.endpoint)
    region = "us-east-1"
    print(f"\nembedded AWS: {env.endpoint} (region {region}, any credentials)")
    print(f"  export AWS_ENDPOINT_URL={env.endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
          f"AWS_REGION={region} AWS_DEFAULT_REGION={region}")  # fmt: skip
    print(f"  AWS CLI v1 (ignores AWS_ENDPOINT_URL): aws --endpoint-url {env.endpoint} --region {region} sqs list-queues")
    print(f"  raw-events queue: {outputs['raw_events_queue_url']}")
    print(f"  state machine:    {outputs['state_machine_arn']}")
    print(f"  webhook receiver: http://127.0.0.1:{hook_port}/ (what it gets: {record.relative_to(ROOT)})")
    for n, hint in enumerate(_hints(hook_port, record)):
        print(f"  {'try:' if n == 0 else '    '} {hint}")
    print("stop it with ./build.sh down")
    return 0


def _hints(hook_port: int, record: Path) -> list[str]:
    """Commands that work against what up started, in order (a test runs them as printed)."""
    return [
        f"./build.sh rules push --tenant acme rules/tenants/acme.yaml --webhook-url http://127.0.0.1:{hook_port}/hooks/acme",
        "./build.sh tenant --tenant acme --producer testing",
        "./build.sh send --tenant acme --source auto examples/events/okta/user_account_lock.json",
        f"cat {record.relative_to(ROOT)}",
        "./build.sh report",
    ]


def down() -> int:
    workdir = STATE_ROOT / INSTANCE
    pid_file = workdir / "emulator.pid"
    if not pid_file.exists():
        print("no local environment is running")
        return 0
    receiver = workdir / "receiver.pid"
    if receiver.exists():
        stop_group(int(receiver.read_text()))
    stop_group(int(pid_file.read_text()))
    for name in ("emulator.pid", "receiver.pid", "endpoint", "terraform.tfstate", "outputs.json"):
        (workdir / name).unlink(missing_ok=True)
    print("stopped the embedded AWS and the webhook receiver")
    return 0


def lint() -> int:
    """terraform fmt -check and validate for every environment (no backend, no credentials)."""
    failures = []
    fmt = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(ROOT / "terraform")], env=terraform_env())
    if fmt.returncode != 0:
        failures.append("terraform fmt -check")
    for name in ENVIRONMENTS:
        directory = ROOT / "terraform" / "environments" / name
        env = terraform_env(STATE_ROOT / "lint" / name)
        step, result = "init", terraform_init(directory, env, "-backend=false")
        if result.returncode == 0:
            step, result = "validate", subprocess.run(["terraform", f"-chdir={directory}", "validate", "-no-color"],
                                                      env=env, capture_output=True, text=True)  # fmt: skip
        if result.returncode != 0:
            failures.append(f"{name}: terraform {step}")
            print(result.stdout + result.stderr, file=sys.stderr)
        else:
            print(f"{name}: valid")
    if failures:
        print("lint failed: " + ", ".join(failures), file=sys.stderr)
        return 1
    print("terraform fmt and validate: all environments pass")
    return 0


def fire_schedule(args: list[str]) -> int:
    endpoint_file = STATE_ROOT / INSTANCE / "endpoint"
    if not endpoint_file.exists():
        print("no local environment is running (./build.sh up)", file=sys.stderr)
        return 2
    outputs = json.loads((STATE_ROOT / INSTANCE / "outputs.json").read_text())
    if "--group" not in args:
        args = [*args, "--group", outputs["schedule_group"]]
    from emulator.__main__ import main

    return main(["fire-schedule", *args, "--endpoint", endpoint_file.read_text().strip()])


def main(argv: list[str]) -> int:
    verb = argv[0] if argv else ""
    if verb == "up":
        return up()
    if verb == "down":
        return down()
    if verb == "lint":
        return lint()
    if verb == "fire-schedule":
        return fire_schedule(argv[1:])
    print("usage: python -m emulator.local up|down|lint|fire-schedule NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
