"""Supply-chain and hygiene checks on the repository itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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
            allowed = {("contents", "read"), ("id-token", "write")}
            if path.name == "plan.yml":
                allowed.add(("pull-requests", "write"))  # its one plan comment per environment
            for scope, level in (job.get("permissions") or {}).items():
                assert (scope, level) in allowed, f"{path.name}:{name}: {scope}: {level}"


def test_zizmor_finds_nothing_in_the_workflows():
    # zizmor's offline audits at its pedantic persona; a deliberate exception is an inline
    # "zizmor: ignore[...]" with its reason. Unparseable inputs fail the run (--strict-collection).
    import subprocess
    import sys

    zizmor = Path(sys.executable).with_name("zizmor")
    result = subprocess.run([str(zizmor), "--offline", "--strict-collection", "--persona=pedantic", "--no-progress", "."],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "No findings to report" in result.stdout + result.stderr


def test_pins_are_kept_current_and_reviewed():
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"pip", "github-actions", "docker", "terraform"}
    owners = (ROOT / ".github" / "CODEOWNERS").read_text()
    assert re.search(r"^/terraform/ @", owners, re.M) and re.search(r"^/\.github/ @", owners, re.M)
    (base,) = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert re.fullmatch(r"public\.ecr\.aws/lambda/python:3\.12@sha256:[0-9a-f]{64}", base), base


def test_each_environment_commits_its_provider_lock_and_the_pipeline_uses_it_read_only():
    locks = {
        env: (ROOT / "terraform" / "environments" / env / ".terraform.lock.hcl").read_text() for env in ("local", "dev", "staging", "prod")
    }
    for env, lock in locks.items():
        assert 'provider "registry.terraform.io/hashicorp/aws"' in lock, env
        # the registry's checksums of every platform's package, not only the mirror's linux_amd64 h1:
        # without them `terraform init` from the registry fails its checksum check on macOS or arm64
        assert len(re.findall(r'"zh:[0-9a-f]{64}"', lock)) >= 10 and re.search(r'"h1:[A-Za-z0-9+/]{43}="', lock), env
    for name in ("deploy.yml", "apply.yml", "plan.yml"):
        inits = re.findall(r"terraform init[^\n]*", (ROOT / ".github" / "workflows" / name).read_text())
        assert inits and all("-lockfile=readonly" in line for line in inits), name


def test_no_secrets_in_code_or_tfvars():
    # the embedded AWS's dummy credentials are the literal "testing"; anything else would be a leak
    suspicious = re.compile(
        r"(AKIA[0-9A-Z]{16}|secret_access_key\s*=\s*[\"'](?!testing)|-----BEGIN [A-Z ]*PRIVATE KEY|xox[baprs]-[0-9A-Za-z-]+)"
    )
    for path in [*ROOT.glob("terraform/**/*.tf"), *ROOT.glob("terraform/**/*.tfvars"), *ROOT.glob("handlers/**/*.py"),
                 *ROOT.glob("rules/**/*.yaml"), *WORKFLOWS]:  # fmt: skip
        assert not suspicious.search(path.read_text()), path


def test_runtime_requirements_are_pinned_and_hold_no_tooling():
    runtime = (ROOT / "requirements.txt").read_text()
    assert "moto" not in runtime and all("==" in line for line in runtime.splitlines() if line and not line.startswith("#"))


def test_python_lint():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "check", "handlers", "cli", "emulator", "tests"], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_is_formatted():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ruff", "format", "--check", "handlers", "cli", "emulator", "tests"], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_types_check_strictly():
    # mypy is configured in pyproject.toml: strict for the Lambda package, the CLI and the emulator.
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_no_path_of_a_particular_machine():
    # The repository stands alone: no absolute path of one machine in code, docs or defaults. Only
    # .ci/run may name what the CI machine needs (the provider mirror, the corpus).
    import subprocess

    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    machine = re.compile(r"(?<![\w.$/-])/(?:work|opt|home|root|Users|mnt|srv)/[\w.-]+")
    found = []
    for name in listed.stdout.split():
        path = ROOT / name
        if name == ".ci/run" or not path.is_file() or path.suffix in (".png", ".gz"):
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if machine.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert found == []


@pytest.mark.parametrize(
    ("locked", "pinned", "constrained"),
    [("requirements.lock", "requirements.txt", True), ("requirements-dev.lock", "requirements-dev.txt", True),
     # checkov's is compiled without constraints.txt: its pins would fight the project's (hence its own virtualenv)
     ("requirements-checkov.lock", "requirements-checkov.txt", False)],
)  # fmt: skip
def test_each_lock_matches_the_pins_and_hashes_every_package(locked: str, pinned: str, constrained: bool):
    # The locks are generated (each header says how): the runtime's for the image and the package,
    # development's for ./build.sh (tests, CI), checkov's for its own virtualenv; they must not drift
    # from the pins or from each other.
    def pins(text: str) -> dict[str, str]:
        found = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", text, re.M)
        return {name.lower().replace("_", "-"): version for name, version in found}

    lock_text = (ROOT / locked).read_text()
    lock, constraints = pins(lock_text), pins((ROOT / "constraints.txt").read_text())
    for name, version in pins((ROOT / pinned).read_text()).items():
        assert lock.get(name) == version, name
    if locked == "requirements-dev.lock":  # it holds the runtime's packages too: the same versions
        for name, version in pins((ROOT / "requirements.lock").read_text()).items():
            assert lock.get(name) == version, name
    if constrained:
        for name, version in lock.items():
            assert constraints.get(name) == version, f"{name}: lock {version}, constraints {constraints.get(name)}"
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock_text)[1:]
    assert len(blocks) == len(lock) and all("--hash=sha256:" in block for block in blocks)
    assert "/opt/" not in lock_text and not re.search(r"^--(find-links|index-url|extra-index-url)", lock_text, re.M)


def test_the_local_environment_sends_every_service_the_stack_uses_to_the_embedded_aws():
    # A service without an endpoint in the local provider block would make terraform reach for the
    # real AWS (a lookup of <service>.<region>.amazonaws.com) from a test: never.
    service_of = {
        "aws_cloudwatch_log": "logs", "aws_cloudwatch_dashboard": "cloudwatch", "aws_cloudwatch_metric_alarm": "cloudwatch",
        "aws_dynamodb": "dynamodb", "aws_iam": "iam", "aws_kms": "kms", "aws_lambda": "lambda", "aws_s3": "s3",
        "aws_scheduler": "scheduler", "aws_secretsmanager": "secretsmanager", "aws_sesv2": "sesv2", "aws_sns": "sns",
        "aws_sfn": "sfn", "aws_sqs": "sqs",
    }  # fmt: skip
    local = (ROOT / "terraform" / "environments" / "local" / "main.tf").read_text()
    endpoints = set(re.findall(r"^\s+(\w+)\s+= var\.endpoint", local.split("endpoints {")[1].split("}")[0], re.M))
    used = set()
    for path in ROOT.glob("terraform/**/*.tf"):
        if "/tests/" in str(path):
            continue
        for kind in re.findall(r'^resource "(aws_\w+)"', path.read_text(), re.M):
            prefixes = [p for p in service_of if kind.startswith(p)]
            assert prefixes, f"{path.relative_to(ROOT)}: {kind}: which service? (add it to this test's map)"
            used.add(service_of[max(prefixes, key=len)])
    assert used <= endpoints, f"no local endpoint for {sorted(used - endpoints)}"
