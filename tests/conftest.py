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
    if not CORPUS_PRESENT:
        corpus = [item for item in items if "samples" in getattr(item, "fixturenames", ())]
        if corpus:
            config.hook.pytest_deselected(items=corpus)
            items[:] = [item for item in items if item not in corpus]
        config.stash[_CORPUS_NOTE] = (
            f"real-sample corpus not found at {SAMPLES} (set COACHFLOW_SAMPLES): {len(corpus)} tests over it deselected, all others run"
        )
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: every worker sorts alike
        _schedule(items)


# Parallel runs (pytest-xdist, `./build.sh test` runs with `-n N --dist loadgroup`): a session fixture
# is set up once per worker that uses it, so the tests over one shared embedded AWS are one group,
# run by one worker: one `terraform apply` for all the tests that read the applied stack, one bare
# emulator for the emulator's own tests. A module-scoped fixture that starts an embedded AWS keeps
# its module's tests together the same way. Everything else is spread over the workers.
SHARED_ENVIRONMENTS = ("stack", "emulator")  # session fixtures, each an embedded AWS
MODULE_ENVIRONMENTS = ("faulty",)  # module fixtures that start an embedded AWS (tests/test_faults.py)


def xdist_group(item: pytest.Item) -> str | None:
    names = getattr(item, "fixturenames", ())
    for name in SHARED_ENVIRONMENTS:
        if name in names:
            return name
    if any(name in names for name in MODULE_ENVIRONMENTS):
        return item.nodeid.split("::")[0]
    return None


def _name_group(item: pytest.Item, group: str) -> None:
    """What pytest-xdist's loadgroup does in a worker: the group after an "@" at the end of the test's
    id, which is what its scheduler groups by. pytest-xdist 3.8.0 sets ``item._nodeid``, which pytest
    9.2 no longer reads (a test's id is its structured ``_id``), so its groups never form; this sets
    the id pytest 9.2 reads, once (never a second "@group" where xdist's own naming worked)."""
    nodeid = item.nodeid
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9.2: xdist names the group itself
        return
    item._id = NodeId.parse(f"{nodeid}@{group}")  # type: ignore[attr-defined]


def _schedule(items: list[pytest.Item]) -> None:
    """Group the tests that share an environment, and start the long ones first: the tests that
    apply an environment of their own (marker ``own_environment``) and the groups (whose first
    test applies or starts theirs), so no worker begins a minutes-long test at the end of the run.
    Within that order, tests keep their collection order."""
    for item in items:
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            _name_group(item, group)
    first = {id(item): rank for rank, item in enumerate(items)}

    def priority(item: pytest.Item) -> tuple[int, int]:
        if item.get_closest_marker("own_environment"):
            return 0, first[id(item)]
        group = xdist_group(item)
        return (1 if group == "stack" else 2 if group is not None else 3), first[id(item)]

    items.sort(key=priority)


def pytest_report_collectionfinish(config: pytest.Config) -> str | list[str]:
    return config.stash.get(_CORPUS_NOTE, [])


# The fuzz tests (test_fuzz.py) say how many cases each ran: one line per test, printed at the end of
# the run, so a change that makes a generator degenerate (ten cases instead of a thousand) shows.
_FUZZ_REPORT = pytest.StashKey[dict[str, str]]()


@pytest.fixture(scope="session")
def fuzz_report(pytestconfig: pytest.Config) -> dict[str, str]:
    """Test name -> its one-line report, printed in the terminal summary."""
    return pytestconfig.stash.setdefault(_FUZZ_REPORT, {})


_FUZZ_SENT = pytest.StashKey[set[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    # Under pytest-xdist the fuzz tests run in worker processes: their lines travel to the controller
    # on the test reports (user_properties are sent over) and are read back in the terminal summary.
    report: pytest.TestReport = yield
    lines = item.config.stash.get(_FUZZ_REPORT, {})
    sent = item.config.stash.setdefault(_FUZZ_SENT, set())
    for name in sorted(set(lines) - sent):
        report.user_properties.append(("fuzz_report", (name, lines[name])))
        sent.add(name)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    report = dict(config.stash.get(_FUZZ_REPORT, {}))
    for reports in terminalreporter.stats.values():
        for each in reports:
            for key, value in getattr(each, "user_properties", ()):
                if key == "fuzz_report":
                    report[value[0]] = value[1]
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
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: other workers' environments may still be starting
    # Leftover work directories of crashed runs; live ones belong to fixtures still cleaning up.
    for leftover in STATE_ROOT.glob("test-*"):
        if not (leftover / "emulator.pid").exists():
            shutil.rmtree(leftover, ignore_errors=True)
