"""The architecture, enforced: import contracts, no import cycles, and a Lambda image that holds the
handlers and nothing else.

The contracts live in pyproject.toml ([tool.importlinter]): Lambda adapters -> stores -> pure core
-> shared vocabulary; the core never imports boto3 or botocore; vendors never import the ingest
stage; the Lambda package never imports the tooling.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from emulator.stack import ROOT

PACKAGES = ("handlers", "cli", "emulator")


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _lambda_commands() -> list[str]:
    """The handlers Terraform's image commands name (image_config.command of every function)."""
    commands = []
    for tf in (ROOT / "terraform").rglob("*.tf"):
        commands += re.findall(r'command\s*=\s*\["(handlers\.[\w.]+)"\]', tf.read_text())
    return sorted(set(commands))


def test_the_import_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_import_cycle_anywhere_function_local_imports_included():
    graph = _graph()  # grimp reads every import statement, those inside functions too
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules or imported.split(".")[0] not in PACKAGES:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_image_holds_the_handlers_and_nothing_else():
    # What the Dockerfile copies: the handlers package and the locked runtime requirements, nothing else.
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignore[0] == "*" and {line for line in ignore if line.startswith("!")} == {"!handlers/", "!requirements.lock"}
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", (ROOT / "Dockerfile").read_text(), re.M)
    assert {source for line in copied for source in line.split()} == {"requirements.lock", "handlers/"}

    # Every module of the package is needed by a Lambda entry point: nothing else rides along.
    commands = _lambda_commands()
    entry_modules = {command.rsplit(".", 1)[0] for command in commands}
    assert entry_modules == {"handlers.normalize", "handlers.check_rules", "handlers.trigger_notifications", "handlers.sweep"}
    graph = _graph()
    needed = set(entry_modules)
    for module in entry_modules:
        needed |= {m for m in graph.find_upstream_modules(module) if m.startswith("handlers")}
    needed |= {".".join(m.split(".")[:n]) for m in needed for n in range(1, m.count(".") + 1)}  # their packages
    shipped = {m for m in graph.modules if m == "handlers" or m.startswith("handlers.")}
    assert shipped - needed == set(), "modules in the image that no Lambda function uses"


def test_each_image_command_imports_from_the_image_content_alone(tmp_path: Path):
    # The image content (a copy of handlers/ only) on the path, the runtime dependencies installed:
    # every command Terraform names imports and is callable, without any of the tooling.
    shutil.copytree(ROOT / "handlers", tmp_path / "handlers", ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import importlib, sys\n"
        "for ref in sys.argv[1:]:\n"
        "    module, _, name = ref.rpartition('.')\n"
        "    assert callable(getattr(importlib.import_module(module), name)), ref\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'cli', 'emulator', 'tests', 'yaml', 'moto', 'hypothesis'})\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *_lambda_commands()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_each_function_imports_only_what_it_uses():
    # Cold starts pay for every import: delivering notifications needs neither the rule engine nor
    # pydantic, evaluating needs no vendor parsers, normalizing needs no rule engine.
    absent = {
        "handlers.trigger_notifications": ["pydantic", "handlers.rules", "handlers.ingest", "handlers.vendors"],
        "handlers.check_rules": ["handlers.ingest", "handlers.vendors", "handlers.batching"],
        "handlers.normalize": ["handlers.rules", "handlers.ledger", "handlers.notify"],
        "handlers.sweep": ["pydantic", "handlers.rules", "handlers.ingest", "handlers.vendors", "handlers.notify"],
    }
    for module, unwanted in absent.items():
        code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
        loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
        assert not {m for m in loaded for u in unwanted if m == u or m.startswith(u + ".")}, module


def test_every_module_of_the_package_has_its_place_in_the_layers():
    # A new module outside the layers would escape the contracts: every one must be placed.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    unplaced = [
        module
        for module in _graph().modules
        if module.startswith("handlers.")
        and module not in ("handlers.rules",)  # the rules package itself holds only its docstring
        and not any(module == p or module.startswith(p + ".") for p in placed)
    ]
    assert unplaced == []
