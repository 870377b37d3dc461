"""Shell completion: `snail completion bash|zsh|fish` prints click's script; in a real bash it completes
commands, phase names (--from/--to/--to-phase, promote) and run ids (--run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.state.base import RunRecord
from orchestrator.state.sqlite import SqliteStore
from tests.harness.cli import snail

BIN = Path(sys.executable).parent


def _bash_complete(cwd: Path, *words: str) -> list[str]:
    """What bash's COMPREPLY holds after the user types `words` and presses TAB (the script really sourced)."""
    line = " ".join(f'"{w}"' for w in words)
    script = (
        'eval "$(snail completion bash)"\n'
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        "_snail_completion snail\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


@pytest.fixture
def project(make_pipeline) -> Path:  # noqa: ANN001
    """A pipeline with phases one and two, and two recorded runs in its local state."""
    path = make_pipeline()
    store = SqliteStore(path.parent / ".snail" / "state.db")
    for run_id in ("r-20261129-070849-a118", "r-20261129-080000-b222"):
        store.start_run(RunRecord(run_id, "shine-api-gateway", "run", "running", "2026-11-29T07:08:49+00:00"))
    return path.parent


@pytest.mark.process
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_phases_and_run_ids(project: Path) -> None:
    """TAB after `snail pro`, `promote `, `run --from `, `rollback --to-phase t`, `trail --run r-2026…0849`."""
    assert "promote" in _bash_complete(project, "snail", "pro")
    assert _bash_complete(project, "snail", "promote", "") == ["one", "two"]
    assert _bash_complete(project, "snail", "run", "--from", "") == ["one", "two"]
    assert _bash_complete(project, "snail", "rollback", "--to-phase", "t") == ["two"]
    assert _bash_complete(project, "snail", "trail", "--run", "r-20261129-07") == ["r-20261129-070849-a118"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_each_shells_script(project: Path, shell: str) -> None:
    """Each shell gets click's script bound to `snail` and _SNAIL_COMPLETE; an unknown shell is a usage error."""
    r = snail(project, "completion", shell)
    assert r.returncode == 0, r.stderr
    assert f"_SNAIL_COMPLETE={shell}_complete" in r.stdout or f"_SNAIL_COMPLETE={shell}_source" in r.stdout
    bad = snail(project, "completion", "tcsh")
    assert bad.returncode == 2
