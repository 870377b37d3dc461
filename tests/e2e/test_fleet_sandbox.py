"""A fleet in the sandbox with real containers: `sandbox up --fleet` seeds two targets in two regions,
`--sandbox fleet run` delivers both wave by wave and each answers on its own task, a second run is silent, and
`sandbox down --fleet` leaves no container (what `make demo-fleet` relies on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

FLEET = """\
version: 1
targets:
  use1: {region: us-east-1, cluster: shop-use1}
  euw1: {region: eu-west-1, cluster: shop-euw1}
waves:
  - {name: first, targets: [use1]}
  - {name: second, targets: [euw1]}
"""


def snail(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`snail …` in the fleet's folder, on a sandbox port of its own."""
    env = {**os.environ, "SNAIL_SANDBOX_PORT": "4593", "SNAIL_FLEET_POLL": "0.2"}
    env.pop("SNAIL_FILE", None)
    env.pop("SNAIL_FLEET", None)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True, timeout=600, cwd=root
    )


@pytest.mark.process
def test_a_fleet_of_two_regions_is_seeded_delivered_and_torn_down_in_the_sandbox(
    tmp_path: Path,
    docker_client,  # noqa: ANN001
    registry: str,
    build_args: dict[str, str],
) -> None:
    """Both targets run the scaffolded service on real containers, each in its own region and cluster."""
    root = tmp_path / "shop"
    root.mkdir()
    info = None
    try:
        init = snail(root, "init", "--name", "shop")
        assert init.returncode == 0, init.stdout + init.stderr
        (root / "fleet.yaml").write_text(FLEET)
        up = snail(root, "sandbox", "up", "--fleet")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "2 targets seeded" in up.stdout and "eu-west-1/shop-euw1/shop" in up.stdout
        run = snail(root, "--sandbox", "fleet", "run")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "passed on every target (2 delivered)" in run.stdout
        from ecsbox import control

        info = control.status(root / ".snail", with_services=True)
        assert info is not None
        for region, cluster in (("us-east-1", "shop-use1"), ("eu-west-1", "shop-euw1")):
            ecs = info.client("ecs", region)
            svc = ecs.describe_services(cluster=cluster, services=["shop"])["services"][0]
            assert svc["taskDefinition"].endswith(":2"), svc["taskDefinition"]  # snail's revision, not the seed's
            arns = ecs.list_tasks(cluster=cluster, serviceName="shop", desiredStatus="RUNNING")["taskArns"]
            tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
            ours = [t for t in tasks if t["taskDefinitionArn"] == svc["taskDefinition"]]
            binding = ours[0]["containers"][0]["networkBindings"][0]
            answer = requests.get(f"http://127.0.0.1:{binding['hostPort']}/health", timeout=5)
            assert answer.status_code == 200, (region, answer.text)
        again = snail(root, "--sandbox", "-q", "fleet", "run")
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    finally:
        down = snail(root, "sandbox", "down", "--fleet")
    assert down.returncode == 0, down.stdout + down.stderr
    if info is not None:
        left = docker_client.containers.list(all=True, filters={"label": f"snail-sandbox-id={info.sandbox_id}"})
        assert left == []
