"""`./build.sh demo` end to end: exit 0, the summary the issue asks for, nothing left running, from a
copy of the repository with no sample corpus anywhere (the repository stands alone)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emulator.stack import ROOT, free_port, port_in_use

pytestmark = pytest.mark.integration


def _clone(target: Path) -> Path:
    """The repository's files as a fresh clone has them (tracked and new, never ignored ones), in a
    directory with no shared/ beside it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.own_environment
def test_the_demo_runs_the_pipeline_and_cleans_up(tmp_path: Path):
    port = free_port()
    clone, empty = _clone(tmp_path / "clone"), tmp_path / "empty-corpus"
    empty.mkdir()
    assert not (clone.parent / "shared").exists()
    env = {**os.environ, "COACHFLOW_EMULATOR_PORT": str(port), "COACHFLOW_SAMPLES": str(empty), "PYTHONPATH": str(clone)}
    env.pop("PYTHONPYCACHEPREFIX", None)  # the clone's bytecode stays in the clone, not in the repository's cache by a temporary path
    result = subprocess.run([sys.executable, "-m", "emulator.demo"], cwd=clone, capture_output=True, text=True, timeout=600, env=env)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    events_in = int(re.search(r"events in:\s+(\d+) records", out).group(1))
    assert events_in >= 20
    vendors = re.search(r"vendors \[(.*?)\]", out).group(1).split(", ")
    assert len(vendors) >= 2 and len(re.search(r"tenants \[(.*?)\]", out).group(1).split(", ")) >= 2
    counts = dict(re.findall(r"(normalized|ignored|rejected)=(\d+)", out.split("normalize stage:")[1].splitlines()[0]))
    assert sum(int(v) for v in counts.values()) == events_in
    assert "reason=malformed" in out
    notified, quiet = map(int, re.search(r"matched\+notified:\s+(\d+) executions; no match: (\d+)", out).groups())
    assert notified >= 1 and quiet >= 1
    delivered, arrived = map(int, re.search(r"(\d+) delivered \(per TriggerNotifications\), (\d+) arrived", out).groups())
    assert delivered == arrived >= 1
    # at least three channels delivered, and acme's ladder climbed past a tip
    per_channel = dict(re.findall(r"^   (email|slack|teams|webhook|learning)\s+(\d+)", out, re.M))
    assert len([c for c, n in per_channel.items() if int(n) > 0]) >= 3, per_channel
    assert re.search(r"escalation:.*(training|manager)=\d+", out)
    assert not port_in_use(port)  # the embedded AWS is gone
    leftovers = subprocess.run(["pgrep", "-f", f"emulator serve --port {port}"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
