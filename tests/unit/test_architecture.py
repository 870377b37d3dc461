"""The one-way flow holds: config -> plan -> engine -> state -> trail, with the CLI, the sandbox and doctor outside."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest


def _imported_by(module: str) -> set[str]:
    """The orchestrator modules a fresh interpreter loads to import `module`."""
    code = (
        f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('orchestrator'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["orchestrator.engine.executor", "orchestrator.plan", "orchestrator.gates"])
def test_the_engine_needs_no_cli_sandbox_or_doctor(module: str) -> None:
    """Importing the engine, the planner or the gates loads neither the CLI, the sandbox nor doctor."""
    loaded = _imported_by(module)
    assert not {m for m in loaded if m.startswith(("orchestrator.cli", "ecsbox", "orchestrator.doctor"))}


def test_the_planner_does_not_import_the_engine() -> None:
    """The plan is handed to the engine; the planner never imports it (no plan <-> engine cycle)."""
    assert not {m for m in _imported_by("orchestrator.plan") if m.startswith("orchestrator.engine")}


def test_the_emulator_imports_nothing_of_the_product() -> None:
    """ecsbox/ is its own package: importing every one of its modules loads no orchestrator module, and its
    source names none (a lazy import inside a function would not show in sys.modules)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "ecsbox"
    modules = sorted(f"ecsbox.{p.stem}" for p in root.glob("*.py") if p.stem != "__init__")
    assert "ecsbox.agent" in modules and "ecsbox.daemon" in modules
    loaded = _imported_by(", ".join(["ecsbox", *modules]))
    assert loaded == set()
    for path in root.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", path.read_text(), re.M)
        assert not [name for name in imports if name.startswith("orchestrator")], path
