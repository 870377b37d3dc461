"""`snail init` in a fresh folder that is not snail's checkout delivers green in the sandbox with no edit: the
acceptance of issue 22 (the wheel-installed version of this runs in tests/e2e/test_wheel.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e


def snail(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`snail …` in the project folder, on a sandbox port of its own."""
    env = {**os.environ, "SNAIL_SANDBOX_PORT": "4591"}
    env.pop("SNAIL_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True, timeout=600, cwd=root
    )


@pytest.mark.process
def test_init_then_sandbox_run_is_green_and_a_second_quiet_run_prints_nothing(
    tmp_path: Path,
    docker_client,  # noqa: ANN001
    registry: str,
    build_args: dict[str, str],
) -> None:
    """init + sandbox up + --sandbox run exit 0 and the service answers; `--sandbox -q run` prints nothing and
    exits 0; `sandbox down` leaves no container of this sandbox."""
    root = tmp_path / "my-service"
    root.mkdir()
    try:
        init = snail(root, "init", "--port", "8080")
        assert init.returncode == 0, init.stderr
        assert "wrote pipeline.yaml" in init.stdout and ".snail/" in (root / ".gitignore").read_text()
        up = snail(root, "sandbox", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "pushes to      registry " in up.stdout
        run = snail(root, "--sandbox", "run")
        assert run.returncode == 0, run.stdout + run.stderr
        from ecsbox import control

        info = control.status(root / ".snail", with_services=True)
        (svc,) = [s for s in info.services if s["service"] == "my-service"]
        (task,) = [t for t in svc["tasks"] if t["last_status"] == "RUNNING"]
        answer = requests.get(f"http://{task['endpoints'][0]}/health", timeout=5)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        again = snail(root, "--sandbox", "-q", "run")
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    finally:
        down = snail(root, "sandbox", "down")
    assert down.returncode == 0, down.stderr
    sandbox_id = info.sandbox_id
    left = docker_client.containers.list(all=True, filters={"label": f"snail-sandbox-id={sandbox_id}"})
    assert left == []
