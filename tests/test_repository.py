"""Supply-chain and hygiene checks on the repository itself."""

from __future__ import annotations

import re

import yaml

from emulator.stack import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_every_action_is_pinned_by_commit_sha():
    assert WORKFLOWS
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*(\S+)", line)
            if match and not match.group(1).startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), f"{path.name}: {line.strip()}"


def test_workflows_default_to_read_only_permissions():
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            for scope, level in (job.get("permissions") or {}).items():
                assert (scope, level) in {("contents", "read"), ("id-token", "write")}, f"{path.name}:{name}: {scope}: {level}"


def test_no_secrets_in_code_or_tfvars():
    # the embedded AWS's dummy credentials are the literal "testing"; anything else would be a leak
    suspicious = re.compile(
        r"(AKIA[0-9A-Z]{16}|secret_access_key\s*=\s*[\"'](?!testing)|-----BEGIN [A-Z ]*PRIVATE KEY|xox[baprs]-[0-9A-Za-z-]+)"
    )
    for path in [*ROOT.glob("terraform/**/*.tf"), *ROOT.glob("terraform/**/*.tfvars"), *ROOT.glob("handlers/**/*.py"),
                 *ROOT.glob("rules/**/*.yaml"), *WORKFLOWS]:  # fmt: skip
        assert not suspicious.search(path.read_text()), path


def test_the_lambda_image_holds_only_the_handlers():
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[0] == "*" and "!handlers/" in ignore and "!emulator/" not in ignore
    runtime = (ROOT / "requirements.txt").read_text()
    assert "moto" not in runtime and all("==" in line for line in runtime.splitlines() if line and not line.startswith("#"))


def test_python_lint():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "handlers", "emulator", "tests"], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
