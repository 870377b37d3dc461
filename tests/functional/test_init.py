"""`snail init` scaffolds a pipeline that validates, refuses to overwrite without --force, and lists what it
wrote. No AWS and no Docker: the sandbox run of the same scaffold is tests/e2e/test_init_sandbox.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def snail(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SNAIL_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True, timeout=60, cwd=root
    )


def test_init_scaffolds_a_pipeline_that_validates(tmp_path: Path) -> None:
    """pipeline.yaml (commented), one phase, a Dockerfile with ARG BASE_IMAGE and an app, .snail/ ignored."""
    root = tmp_path / "Shop API"
    root.mkdir()
    (root / ".gitignore").write_text("*.pyc")
    r = snail(root, "init", "--port", "9000", "--container", "web", "--cluster", "prod")
    assert r.returncode == 0, r.stderr
    wanted = ["pipeline.yaml", "phases/first.yaml", "images/Shop-API/Dockerfile", "images/Shop-API/app.py"]
    assert [line.split("wrote ", 1)[1] for line in r.stdout.splitlines() if "wrote " in line] == [
        *wanted,
        ".gitignore (.snail/ added)",
    ]
    text = (root / "pipeline.yaml").read_text()
    assert "# " in text and "${SNAIL_BASE_IMAGE:-python:3.12-slim}" in text
    p = yaml.safe_load(text)
    assert p["service"] == {
        "cluster": "prod",
        "name": "Shop-API",
        "region": "us-east-1",
        "container": "web",
        "port": 9000,
        "desired_count": 1,
    }
    dockerfile = (root / "images/Shop-API/Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert "9000" in (root / "images/Shop-API/app.py").read_text()
    assert (root / ".gitignore").read_text() == "*.pyc\n.snail/\n"
    v = snail(root, "validate")
    assert v.returncode == 0, v.stdout + v.stderr


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """A second init writes nothing and names the files (exit 2); --force replaces them; .snail/ is added once."""
    assert snail(tmp_path, "init").returncode == 0
    (tmp_path / "pipeline.yaml").write_text("# mine\n")
    again = snail(tmp_path, "init", "--port", "7000")
    assert again.returncode == 2
    assert "init would overwrite" in again.stderr and "pipeline.yaml" in again.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == "# mine\n"
    forced = snail(tmp_path, "init", "--port", "7000", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "port: 7000" in (tmp_path / "pipeline.yaml").read_text()
    assert (tmp_path / ".gitignore").read_text().count(".snail/") == 1


def test_init_refuses_a_name_ecs_would_refuse(tmp_path: Path) -> None:
    """ECS names: letters, digits, - and _; anything else is exit 2 before a file is written."""
    r = snail(tmp_path, "init", "--name", "my service!")
    assert r.returncode == 2 and "--name" in r.stderr
    assert not (tmp_path / "pipeline.yaml").exists()
