"""``./build.sh plan local``: the plan of the local environment against a fresh embedded AWS, and its
summary (``cli.plan_summary``): what the whole stack is, as a reviewer would see it. Leaves nothing
running, and nothing behind unless it failed (then its working directory is kept and named)."""

from __future__ import annotations

import json
import shutil
import sys
import uuid

from cli.plan_summary import summarize
from emulator.stack import LocalEnvironment


def run() -> int:
    env = LocalEnvironment(name=f"plan-{uuid.uuid4().hex[:8]}")
    env.start()
    try:
        plan_file = env.workdir / "local.tfplan"
        for args in (
            ["init", f"-backend-config=path={env.workdir / 'terraform.tfstate'}", "-reconfigure"],
            ["plan", "-input=false", "-no-color", f"-var=endpoint={env.endpoint}", f"-out={plan_file}"],
            ["show", "-json", str(plan_file)],
        ):
            result = env.terraform(*args)
            if result.returncode != 0:
                print(result.stdout[-2000:] + result.stderr[-3000:], file=sys.stderr)
                print(f"kept for a look: {env.workdir} (the emulator's log, Terraform's data)", file=sys.stderr)
                return 1
        print(summarize(json.loads(result.stdout), "Terraform plan: local (a fresh embedded AWS)"))
    finally:
        env.stop()
    shutil.rmtree(env.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
