"""The one-way flow holds: config -> plan -> engine -> state -> trail, with the CLI, the sandbox and doctor outside."""

from __future__ import annotations

import json
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
