"""build.sh, the single entry point: usage, errors, and the up / send / push / fire-schedule / down
cycle on its own instance of the embedded AWS."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from emulator.stack import EXAMPLES, ROOT, STATE_ROOT, cli_config_text, free_port, port_in_use, terraform_init


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["./build.sh", *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)


def test_usage_and_unknown_verbs():
    help_ = _run("help")
    assert help_.returncode == 0 and "demo" in help_.stdout and "test" in help_.stdout
    bogus = _run("frobnicate")
    assert bogus.returncode == 2 and "unknown verb 'frobnicate'" in bogus.stderr and "usage:" in bogus.stderr


def test_plan_needs_an_image_an_environment_and_a_backend():
    assert "COACHFLOW_IMAGE_URI" in _run("plan", "dev", COACHFLOW_IMAGE_URI="").stderr
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/coachflow-handlers@sha256:" + "0" * 64
    wrong = _run("plan", "qa", COACHFLOW_IMAGE_URI=image)
    assert wrong.returncode == 2 and "ENV must be one of: dev staging prod" in wrong.stderr
    no_backend = _run("plan", "dev", COACHFLOW_IMAGE_URI=image, COACHFLOW_TF_BACKEND_CONFIG="/nonexistent/backend.hcl")
    assert no_backend.returncode == 2 and "backend" in no_backend.stderr
    assert _run("apply", "dev", COACHFLOW_TF_BACKEND_CONFIG="/nonexistent/backend.hcl").returncode == 2


@pytest.mark.own_environment
@pytest.mark.integration
def test_up_send_push_fire_down(tmp_path: Path):
    instance, port = f"test-up-{uuid.uuid4().hex[:8]}", free_port()
    env = {"COACHFLOW_INSTANCE": instance, "COACHFLOW_EMULATOR_PORT": str(port)}
    try:
        up = _run("up", **env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout and port_in_use(port)
        # it shows terraform's progress, and exports that boto3 and both AWS CLIs follow
        assert re.search(r"\[\d+/\d+\] module\.coachflow\.\S+ \(\d+s\)", up.stdout) and re.search(r"applied in \d+s", up.stdout)
        assert "AWS_DEFAULT_REGION=us-east-1" in up.stdout and f"aws --endpoint-url http://127.0.0.1:{port}" in up.stdout

        # Its hints, run as printed, end in a notification that arrives.
        hints = [line.strip().removeprefix("try:").strip() for line in up.stdout.split("webhook receiver:")[1].splitlines()[1:]
                 if line.strip().startswith(("try:", "./build.sh", "cat "))]  # fmt: skip
        assert hints[0].startswith("./build.sh rules push") and hints[-1] == "./build.sh report"
        for hint in hints[:3]:
            done = subprocess.run(hint, shell=True, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
            assert done.returncode == 0, f"{hint}: {done.stderr[-2000:]}"
        record = ROOT / hints[3].removeprefix("cat ")
        deadline = time.time() + 180
        while time.time() < deadline and not (record.exists() and '"/hooks/acme"' in record.read_text()):
            time.sleep(1)
        received = [json.loads(line) for line in record.read_text().splitlines()]
        assert [r["status"] for r in received if r["path"] == "/hooks/acme"] == [204], received
        assert json.loads(received[0]["body"])["rule_id"] == "okta-account-locked"
        pushed = _run("rules", "push", "--tenant", "acme", "rules/tenants/acme.yaml", **env)
        assert pushed.returncode == 0, pushed.stderr
        assert json.loads(pushed.stdout)["rules"] == 14
        registered = _run("tenant", "--tenant", "acme", "--producer", "testing", "--producer", "AROAEXAMPLE:*", **env)
        assert registered.returncode == 0, registered.stderr
        assert json.loads(registered.stdout)["producers"] == ["AROAEXAMPLE:*", "testing"]
        sent = _run("send", "--tenant", "acme", "--source", "okta", str(EXAMPLES / "okta" / "user_account_lock.json"), **env)
        assert sent.returncode == 0 and json.loads(sent.stdout)["message_id"]
        fired = _run("fire-schedule", "coachflow-local-reevaluate-acme", **env)
        assert fired.returncode == 0, fired.stderr
        assert ":execution:coachflow-local-evaluate:" in json.loads(fired.stdout)["started"]
    finally:
        down = _run("down", **env)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not port_in_use(port)
    assert not (STATE_ROOT / instance / "emulator.pid").exists()


def test_terraform_uses_the_mirror_in_place_or_else_a_plugin_cache(tmp_path: Path):
    """Not both: concurrent inits replace a plugin cache's entry under a running terraform."""
    mirrored = cli_config_text(tmp_path / "mirror", tmp_path / "cache")
    assert f'path    = "{tmp_path / "mirror"}"' in mirrored and "plugin_cache_dir" not in mirrored
    assert cli_config_text(None, tmp_path / "cache") == f'plugin_cache_dir = "{tmp_path / "cache"}"\n'


@pytest.mark.parametrize("mirror", [False, True])
def test_inits_sharing_a_plugin_cache_run_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: bool):
    """Without a mirror, every terraform init on the machine shares the plugin cache: they take turns.
    A stand-in terraform on PATH (the registry it would install from is not reachable here) logs its
    start, waits up to 3 s for the other init to start too, and logs its end: taking turns, the first
    waits in vain; with a mirror nothing is shared, and both start before either ends."""
    log = tmp_path / "log"
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho start >> {log}\nfor _ in $(seq 30); do [ "$(grep -c start {log})" -ge 2 ] && break; sleep 0.1; done\n'
                    f"echo end >> {log}\n")  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    if mirror:
        monkeypatch.setenv("COACHFLOW_TF_PLUGIN_MIRROR", str(tmp_path))
    else:
        monkeypatch.delenv("COACHFLOW_TF_PLUGIN_MIRROR", raising=False)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: terraform_init(tmp_path, dict(os.environ)), range(2)))
    assert all(r.returncode == 0 for r in results)
    assert log.read_text().split() == (["start", "start", "end", "end"] if mirror else ["start", "end", "start", "end"])
