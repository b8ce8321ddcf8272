"""The local environment: the embedded AWS process plus ``terraform apply`` of
``terraform/environments/local`` against it. Used by ``./build.sh demo|up|down`` and the tests.

Terraform runs with a per-instance data directory and state file (under the instance's work
directory), so several instances (parallel test runs, a demo next to ``up``) never collide. The
AWS provider comes from a filesystem mirror when ``COACHFLOW_TF_PLUGIN_MIRROR`` names one (machines
without registry access), from the registry otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from emulator import clients
from emulator.clients import REGION

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = ROOT / "terraform" / "environments" / "local"
STATE_ROOT = ROOT / ".coachflow"
DEFAULT_PORT = 4566
# The long-lived environment of './build.sh up' lives in .coachflow/<instance>; tests use their own.
INSTANCE = os.environ.get("COACHFLOW_INSTANCE", "default")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION}  # fmt: skip


EXAMPLES = ROOT / "examples" / "events"  # the repository's own example events, one folder per vendor


def samples_dir() -> Path:
    """The optional real-sample corpus: ``$COACHFLOW_SAMPLES``, else ``shared/samples`` beside the
    checkout. Nothing needs it; the tests over it run when it is there."""
    configured = os.environ.get("COACHFLOW_SAMPLES")
    return Path(configured) if configured else ROOT.parent / "shared" / "samples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def cli_config_text(mirror: Path | None, cache: Path) -> str:
    """Terraform's CLI config: the provider mirror when there is one, else a shared plugin cache.

    Not both: Terraform's plugin cache is not safe for concurrent ``terraform init``. An init that
    installs into it replaces the cached entry, and a terraform running beside it (the tests run
    several) can find its provider gone: ``fork/exec .../terraform-provider-aws_v5.100.0_x5: no such
    file or directory`` (seen once in CI, a clean clone, whose cache starts empty). An unpacked
    mirror is linked in place, read-only, so it needs no cache."""
    if mirror is None:
        return f'plugin_cache_dir = "{cache}"\n'
    return "\n".join([
        "provider_installation {",
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}',
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }',
        "}",
    ]) + "\n"  # fmt: skip


def provider_mirror() -> Path | None:
    """The provider filesystem mirror of this machine (``COACHFLOW_TF_PLUGIN_MIRROR``), if it has one."""
    configured = os.environ.get("COACHFLOW_TF_PLUGIN_MIRROR")
    return Path(configured) if configured else None


def terraform_cli_config() -> Path:
    """The CLI config file for this machine (``provider_mirror``), written when it changes."""
    STATE_ROOT.mkdir(exist_ok=True)
    mirror = provider_mirror()
    if mirror is not None and not mirror.is_dir():
        raise SystemExit(f"COACHFLOW_TF_PLUGIN_MIRROR={mirror} is not a directory")
    cache = STATE_ROOT / "plugin-cache"
    if mirror is None:
        cache.mkdir(exist_ok=True)
    config, text = STATE_ROOT / "terraformrc", cli_config_text(mirror, cache)
    if not config.exists() or config.read_text() != text:
        # Whole or not at all: the test processes all write it at start, while terraforms read it.
        staged = config.with_name(f"{config.name}.{os.getpid()}.tmp")
        staged.write_text(text)
        os.replace(staged, config)
    return config


def terraform_env(data_dir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(terraform_cli_config()), "TF_IN_AUTOMATION": "1",
           "CHECKPOINT_DISABLE": "1"}  # fmt: skip
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    return env


def terraform_init(directory: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``terraform init`` of ``directory``, output captured. Without a provider mirror, one init at a
    time on this machine: they share Terraform's plugin cache, and an init that installs into it
    replaces the entry other terraforms are running from (``cli_config_text``). Serialized, only the
    first init of a version installs it; the others find it and link it (an init that finds its
    version in the cache does not replace it)."""
    command = ["terraform", f"-chdir={directory}", "init", "-input=false", "-no-color", *args]
    with contextlib.nullcontext() if provider_mirror() is not None else _plugin_cache_turn():
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@contextlib.contextmanager
def _plugin_cache_turn() -> Iterator[None]:
    """This machine's turn at the plugin cache (an exclusive lock, released when its file closes)."""
    STATE_ROOT.mkdir(exist_ok=True)
    with open(STATE_ROOT / "plugin-cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@dataclass
class LocalEnvironment:
    """One embedded AWS with the local environment applied."""

    name: str = "default"
    port: int | None = None
    workdir: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    fault_plan: Path | None = None  # emulator.faults: re-read when it changes; absent means no faults

    def __post_init__(self) -> None:
        self.workdir = STATE_ROOT / self.name
        if self.port is None:
            self.port = free_port()

    @property
    def fault_log(self) -> Path:
        return self.workdir / "faults-injected.jsonl"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def session(self) -> boto3.session.Session:
        return self._session

    @functools.cached_property
    def _session(self) -> boto3.session.Session:
        return clients.session()  # one per environment: a new session reloads every service model

    def client(self, service: str) -> Any:
        return clients.client(service, self.endpoint)

    def resource(self, service: str) -> Any:
        return self._session.resource(service, endpoint_url=self.endpoint)

    def sent_emails(self) -> list[dict[str, Any]]:
        """What SES sent (moto's sent-message store, served by emulator.api_gaps)."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/coachflow/ses-sent", timeout=10) as answer:
            sent: list[dict[str, Any]] = json.loads(answer.read())
        return sent

    # -- emulator -------------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        assert self.port is not None
        if port_in_use(self.port):
            raise SystemExit(f"port {self.port} is already in use (an earlier './build.sh up'? stop it with './build.sh down')")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "emulator.log", "w")
        command = [sys.executable, "-m", "emulator", "serve", "--port", str(self.port), "--code-root", str(ROOT)]
        if self.fault_plan is not None:
            command += ["--faults", str(self.fault_plan), "--fault-log", str(self.fault_log)]
        self.process = process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() takes the Lambda workers with it
            env={**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT)},
        )
        (self.workdir / "emulator.pid").write_text(str(process.pid))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the embedded AWS exited; see {self.workdir / 'emulator.log'}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the embedded AWS did not answer on {self.endpoint} within {timeout}s")

    def stop(self) -> None:
        pid_file = self.workdir / "emulator.pid"
        pid = self.process.pid if self.process else (int(pid_file.read_text()) if pid_file.exists() else None)
        if pid is not None:
            stop_group(pid)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        pid_file.unlink(missing_ok=True)
        self.process = None

    # -- terraform --------------------------------------------------------------------------------------

    def terraform(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run terraform in the local environment against this instance's state; output captured."""
        env = {**terraform_env(self.workdir / "tfdata"), **CREDENTIALS}
        if args[:1] == ("init",):
            return terraform_init(LOCAL_ENV, env, *args[1:])
        return subprocess.run(["terraform", f"-chdir={LOCAL_ENV}", *args], env=env, text=True, capture_output=True)

    def _streamed(self, args: list[str], progress: Callable[[str], None]) -> subprocess.CompletedProcess[str]:
        env = {**terraform_env(self.workdir / "tfdata"), **CREDENTIALS}
        lines: list[str] = []
        with subprocess.Popen(["terraform", f"-chdir={LOCAL_ENV}", *args], env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) as process:  # fmt: skip
            assert process.stdout is not None and process.stderr is not None
            for line in process.stdout:
                lines.append(line)
                progress(line.rstrip("\n"))
            errors = process.stderr.read()
        return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines), errors)

    def apply(self, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Apply the local environment; ``progress`` (when given) gets each line terraform prints
        while applying, as it prints it."""
        state = self.workdir / "terraform.tfstate"
        state.unlink(missing_ok=True)  # the state described the previous (now gone) emulator
        log = self.workdir / "terraform.log"
        with open(log, "w") as out:
            for args in (
                ["init", f"-backend-config=path={state}", "-reconfigure"],
                ["apply", "-auto-approve", "-input=false", "-no-color", f"-var=endpoint={self.endpoint}"],
                ["output", "-json"],
            ):
                if progress is not None and args[0] == "apply":
                    result = self._streamed(args, progress)
                else:
                    result = self.terraform(*args)
                out.write(result.stdout + result.stderr)
                if result.returncode != 0:
                    raise RuntimeError(f"terraform {args[0]} failed (exit {result.returncode}); log: {log}\n{result.stderr[-3000:]}")
        self.outputs = json.loads(result.stdout)["coachflow"]["value"]
        (self.workdir / "outputs.json").write_text(json.dumps(self.outputs, indent=2))
        return self.outputs


def stop_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            _reap(pid)  # a child of ours that exited stays a zombie, and a zombie still "exists" for killpg
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child (or reaped already): its parent reaps it
