"""The distribution as a user gets it: the wheel built from this checkout, installed into a venv WITHOUT system
site-packages (pip reaches the package index), used from a folder that is not the checkout.

- The wheel holds only the product's packages (orchestrator, ecsbox): no scripts, tests, images or phases.
- Without the `sandbox` extra, every command but `sandbox` works, and `snail sandbox up` says what to install.
- With it: `snail init && snail sandbox up && snail --sandbox run` exits 0 and the service answers; a second
  `snail --sandbox -q run` prints nothing and exits 0; `snail sandbox down` leaves no container (issue 22).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT = "4592"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# left out of the copy the wheel is built from: at the top only (orchestrator/build is a package), and caches anywhere
TOP_JUNK = {".git", ".venv", ".snail", "build", "dist", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _junk(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO_ROOT
    return {n for n in names if (top and n in TOP_JUNK) or n == "__pycache__" or n.endswith(".egg-info")}


def _product_modules() -> set[str]:
    """Every module of the checkout's orchestrator/ and ecsbox/, as wheel paths."""
    return {
        p.relative_to(REPO_ROOT).as_posix()
        for pkg in ("orchestrator", "ecsbox")
        for p in (REPO_ROOT / pkg).rglob("*.py")
        if "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout (pip wheel, isolated build), built from a copy of the sources: an in-tree build
    would write build/ into the checkout, and a stale build/lib could slip removed modules into the wheel."""
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src") / "snail-trail"
    shutil.copytree(REPO_ROOT, src, ignore=_junk)
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)], out, {**os.environ})
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("snail_trail-*.whl")
    return whl


@pytest.mark.process
def test_the_wheel_holds_only_the_product_packages(wheel: Path) -> None:
    """orchestrator/ and ecsbox/, every module of them and no other, and the metadata; none of the checkout's
    scripts, tests, images or phases."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"orchestrator", "ecsbox"}
    assert [t for t in tops if t.endswith(".dist-info")] == [f"{wheel.name.split('-py3')[0]}.dist-info"]
    assert {n for n in names if n.endswith(".py")} == _product_modules()
    assert "orchestrator/build/buildkit.py" in names and "orchestrator/cli/init.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Provides-Extra: sandbox" in metadata and 'extra == "sandbox"' in metadata


@pytest.mark.process
def test_installed_wheel_in_a_fresh_folder(
    wheel: Path,
    tmp_path: Path,
    docker_client,  # noqa: ANN001
    registry: str,
    build_args: dict[str, str],
) -> None:
    """Without the extra, then with it: the acceptance of issue 22, from the installed package alone."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SNAIL_FILE", "VIRTUAL_ENV")}
    env["SNAIL_SANDBOX_PORT"] = PORT
    project = tmp_path / "my-service"
    project.mkdir()
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]

    r = _run([*pip, str(wheel)], tmp_path, env)
    assert r.returncode == 0, r.stderr[-2000:]
    snail = str(bin_dir / "snail")
    where = _run([str(bin_dir / "python"), "-c", "import orchestrator; print(orchestrator.__file__)"], project, env)
    assert str(env_dir) in where.stdout, where.stdout + where.stderr  # the installed copy, not the checkout

    init = _run([snail, "init"], project, env)
    assert init.returncode == 0, init.stderr
    assert _run([snail, "validate"], project, env).returncode == 0
    no_extra = _run([snail, "sandbox", "up"], project, env)
    assert no_extra.returncode == 2, no_extra.stdout + no_extra.stderr
    assert "pip install 'snail-trail[sandbox]'" in no_extra.stderr

    r = _run([*pip, f"{wheel}[sandbox]"], tmp_path, env)
    assert r.returncode == 0, r.stderr[-2000:]
    try:
        up = _run([snail, "sandbox", "up"], project, env)
        assert up.returncode == 0, up.stdout + up.stderr
        run = _run([snail, "--sandbox", "run"], project, env)
        assert run.returncode == 0, run.stdout + run.stderr
        status = _run([snail, "--output", "json", "sandbox", "status"], project, env)
        data = json.loads(status.stdout)
        (svc,) = [s for s in data["services"] if s["service"] == "my-service"]
        (task,) = [t for t in svc["tasks"] if t["last_status"] == "RUNNING"]
        assert requests.get(f"http://{task['endpoints'][0]}/health", timeout=5).status_code == 200
        again = _run([snail, "--sandbox", "-q", "run"], project, env)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    finally:
        down = _run([snail, "sandbox", "down"], project, env)
    assert down.returncode == 0, down.stderr
    left = docker_client.containers.list(all=True, filters={"label": f"snail-sandbox-id={data['sandbox_id']}"})
    assert left == []
    # nothing was written outside the project folder but the venv and pip's own cache
    assert not (REPO_ROOT / "my-service").exists()
