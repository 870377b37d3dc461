"""The product end to end: `snail --sandbox run` of the reference pipeline with real builds, a real registry,
real containers and real HTTP gates; a broken release rolled back and verified over HTTP; the field log's
8080 container stopped by the port probe before it reaches ECS; `sandbox down` leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def project(tmp_path_factory, docker_client, registry, build_args):
    """A copy of the repository's pipeline, phases and images with its own .snail (so its own sandbox)."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy(REPO_ROOT / "pipeline.yaml", root / "pipeline.yaml")
    shutil.copytree(REPO_ROOT / "phases", root / "phases")
    shutil.copytree(REPO_ROOT / "images", root / "images")
    (root / "phases" / "broken-port.yaml").write_text(
        "# the field log's container that listened on 8080\nname: broken-port\nimage: {context: images/broken-port}\n"
    )
    broken = (
        (root / "pipeline.yaml")
        .read_text()
        .replace("phases: [health-only, hybrid-ml, optimized, enhanced]", "phases: [health-only, broken-port]")
    )
    (root / "broken.yaml").write_text(broken)
    yield root
    snail(root, "sandbox", "down")


def snail(
    root: Path, *args: str, env: dict[str, str] | None = None, file: str = "pipeline.yaml", timeout: float = 600
) -> subprocess.CompletedProcess:
    """`snail --sandbox …` in the project copy, as a user runs it."""
    full_env = {
        **os.environ,
        "SNAIL_SANDBOX": "1",
        "SNAIL_FILE": str(root / file),
        "SNAIL_SANDBOX_PORT": os.environ.get("SNAIL_E2E_SANDBOX_PORT", "4599"),
        **(env or {}),
    }
    full_env.setdefault("SNAIL_BASE_IMAGE", "snail-base/python:3.11")
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )


def service_endpoint(root: Path) -> tuple[str, str]:
    """(live revision, http://127.0.0.1:port) of the service's running task, read through boto3."""
    from ecsbox import control

    info = control.status(root / ".snail")
    ecs = info.client("ecs")
    svc = ecs.describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0]
    arns = ecs.list_tasks(cluster="shine", serviceName="shine-api-gateway", desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster="shine", tasks=arns)["tasks"]
    mine = [t for t in tasks if t["taskDefinitionArn"] == svc["taskDefinition"] and t["lastStatus"] == "RUNNING"]
    binding = mine[0]["containers"][0]["networkBindings"][0]
    return svc["taskDefinition"], f"http://127.0.0.1:{binding['hostPort']}"


@pytest.mark.process
def test_reference_pipeline_in_the_sandbox(project) -> None:
    """Up, doctor passes, the four phases are delivered (exit 0), and a second run is a no-op."""
    up = snail(project, "sandbox", "up")
    assert up.returncode == 0, up.stderr
    doctor = snail(project, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    run = snail(project, "run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "done: health-only, hybrid-ml, optimized, enhanced passed their gates" in run.stdout
    status = json.loads(snail(project, "--output", "json", "status").stdout)
    assert status["phase"] == "enhanced" and all(status["good"].values())
    revision, url = service_endpoint(project)
    assert requests.get(f"{url}/ml/status", timeout=5).json()["status"] in ("ready", "degraded")
    assert requests.get(f"{url}/health", timeout=5).json()["phase"] == "enhanced"
    again = snail(project, "run")
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.mark.process
def test_broken_release_is_rolled_back_and_serves_the_good_revision(project) -> None:
    """An enhanced release whose ML fails: exit 1, back on the good revision, which answers over HTTP."""
    good = json.loads(snail(project, "--output", "json", "status").stdout)["good"]["enhanced"]["revision_arn"]
    r = snail(project, "run", "--from", "enhanced", env={"DEMO_BREAK_ML": "1"})
    assert r.returncode == 1, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "http /ml/status failed" in said and "verified by its gates" in said
    revision, url = service_endpoint(project)
    assert revision == good
    assert requests.get(f"{url}/ml/status", timeout=5).json()["status"] in ("ready", "degraded")
    trail = snail(project, "trail").stdout
    assert "## 🚨 **EMERGENCY ROLLBACK EVENTS**" in trail and "JSON status='failed'" in trail


@pytest.mark.process
def test_port_8080_container_is_stopped_by_the_probe(project) -> None:
    """The field log's 8080 container never reaches ECS: the probe names the port; the service is untouched."""
    before, _ = service_endpoint(project)
    r = snail(project, "run", "--skip-preflight", "--from", "broken-port", file="broken.yaml", timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "it listens on 8080" in r.stdout + r.stderr
    after, _ = service_endpoint(project)
    assert after == before


@pytest.mark.process
def test_down_leaves_no_container(project, docker_client) -> None:
    """`sandbox down` stops the daemon and removes every container it started."""
    assert snail(project, "sandbox", "down").returncode == 0
    from ecsbox.daemon import sandbox_id_for

    left = docker_client.containers.list(
        all=True, filters={"label": f"snail-sandbox-id={sandbox_id_for(project / '.snail')}"}
    )
    assert left == []
    assert "not running" in snail(project, "sandbox", "status").stdout
