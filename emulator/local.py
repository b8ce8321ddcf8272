"""``./build.sh up|down|lint|fire-schedule``: the long-lived local environment and Terraform checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from emulator.stack import DEFAULT_PORT, INSTANCE, ROOT, STATE_ROOT, LocalEnvironment, stop_group, terraform_env

ENVIRONMENTS = ("local", "dev", "staging", "prod")


def up() -> int:
    port = int(os.environ.get("COACHFLOW_EMULATOR_PORT", DEFAULT_PORT))
    env = LocalEnvironment(name=INSTANCE, port=port)
    env.start()
    try:
        outputs = env.apply()
    except Exception:
        env.stop()
        raise
    (env.workdir / "endpoint").write_text(env.endpoint)
    print(f"embedded AWS: {env.endpoint} (region us-east-1, any credentials)")
    print(f"  export AWS_ENDPOINT_URL={env.endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1")
    print(f"  raw-events queue: {outputs['raw_events_queue_url']}")
    print(f"  state machine:    {outputs['state_machine_arn']}")
    print("  try: ./build.sh rules push --tenant acme rules/tenants/acme.yaml")
    print("       ./build.sh tenant --tenant acme --producer testing   # './build.sh send' sends as 'testing'")
    print("       ./build.sh send --tenant acme --source auto examples/events/okta/user_account_lock.json")
    print("stop it with ./build.sh down")
    return 0


def down() -> int:
    workdir = STATE_ROOT / INSTANCE
    pid_file = workdir / "emulator.pid"
    if not pid_file.exists():
        print("no local environment is running")
        return 0
    stop_group(int(pid_file.read_text()))
    for name in ("emulator.pid", "endpoint", "terraform.tfstate", "outputs.json"):
        (workdir / name).unlink(missing_ok=True)
    print("stopped the embedded AWS")
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
        for args in (["init", "-backend=false", "-input=false", "-no-color"], ["validate", "-no-color"]):
            result = subprocess.run(["terraform", f"-chdir={directory}", *args], env=env, capture_output=True, text=True)
            if result.returncode != 0:
                failures.append(f"{name}: terraform {args[0]}")
                print(result.stdout + result.stderr, file=sys.stderr)
                break
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
