"""Shared fixtures. Integration tests run against real components: the embedded AWS (moto server +
coachflow's shims) on a free port, real `terraform apply`, real HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from emulator.stack import ROOT, STATE_ROOT, LocalEnvironment, free_port, samples_dir, stop_group

SAMPLES = samples_dir()
# The real-sample corpus is the one optional input: CI always has it; a fresh clone does not. Tests
# that read it (they take the ``samples`` fixture) run when it is there and are deselected, with one
# line saying so, when it is not. Everything else runs on the repository's own examples.
CORPUS_PRESENT = SAMPLES.is_dir() and any(p.is_file() for p in SAMPLES.glob("*/*"))
_CORPUS_NOTE = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CORPUS_PRESENT:
        return
    corpus = [item for item in items if "samples" in getattr(item, "fixturenames", ())]
    if corpus:
        config.hook.pytest_deselected(items=corpus)
        items[:] = [item for item in items if item not in corpus]
    config.stash[_CORPUS_NOTE] = (
        f"real-sample corpus not found at {SAMPLES} (set COACHFLOW_SAMPLES): {len(corpus)} tests over it deselected, all others run"
    )


def pytest_report_collectionfinish(config: pytest.Config) -> str | list[str]:
    return config.stash.get(_CORPUS_NOTE, [])


# The fuzz tests (test_fuzz.py) say how many cases each ran: one line per test, printed at the end of
# the run, so a change that makes a generator degenerate (ten cases instead of a thousand) shows.
_FUZZ_REPORT = pytest.StashKey[dict[str, str]]()


@pytest.fixture(scope="session")
def fuzz_report(pytestconfig: pytest.Config) -> dict[str, str]:
    """Test name -> its one-line report, printed in the terminal summary."""
    return pytestconfig.stash.setdefault(_FUZZ_REPORT, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(_FUZZ_REPORT, {})
    if report:
        terminalreporter.section("fuzz cases")
        for name, line in report.items():
            terminalreporter.write_line(f"{name}: {line}")


@pytest.fixture(scope="session")
def emulator() -> Iterator[LocalEnvironment]:
    """A bare embedded AWS (no Terraform), for the emulator's own tests."""
    env = LocalEnvironment(name=f"test-emulator-{uuid.uuid4().hex[:8]}")
    env.start()
    yield env
    env.stop()
    shutil.rmtree(env.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalEnvironment]:
    """The embedded AWS with terraform/environments/local applied (once per test session)."""
    env = LocalEnvironment(name=f"test-stack-{uuid.uuid4().hex[:8]}")
    env.start()
    try:
        env.apply()
        yield env
    finally:
        env.stop()
        shutil.rmtree(env.workdir, ignore_errors=True)


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP receiver on 127.0.0.1: (base URL, record file)."""
    record = tmp_path / "received.jsonl"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "webhook", "--port", str(port), "--record", str(record)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    import time
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/probe", data=b"{}", method="POST"), timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    record.write_text("")  # forget the probe
    yield f"http://127.0.0.1:{port}", record
    stop_group(proc.pid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Leftover work directories of crashed runs; live ones belong to fixtures still cleaning up.
    for leftover in STATE_ROOT.glob("test-*"):
        if not (leftover / "emulator.pid").exists():
            shutil.rmtree(leftover, ignore_errors=True)
