"""A user's own image runs as built: a FROM-scratch busybox image (no python3) with no task-definition template is
deployed in the sandbox, and it is the image, not the sandbox's bootstrap stub, that answers and is marked good."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

PIPELINE = """\
version: 1
service:
  cluster: scratch
  name: scratch-web
  region: us-east-1
  container: web
  port: 5000
registry:
  ecr: scratch-web
  create: true
defaults:
  gates:
    - {type: http, path: /health, expect: {status: 200, body_contains: "busybox-ok"}, retries: {attempts: 10, wait: 1s}}
  bake: 0s
phases: [web]
"""

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
COPY www /www
EXPOSE 5000
CMD ["/bin/busybox", "httpd", "-f", "-p", "5000", "-h", "/www"]
"""


def snail(root: Path, *args: str) -> subprocess.CompletedProcess:
    """`snail --sandbox …` in the project folder, on a sandbox port of its own."""
    env = {**os.environ, "SNAIL_SANDBOX": "1", "SNAIL_FILE": str(root / "pipeline.yaml"), "SNAIL_SANDBOX_PORT": "4597"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args], env=env, capture_output=True, text=True, timeout=600, cwd=root
    )


@pytest.fixture
def project(tmp_path: Path, docker_client, registry):  # noqa: ANN001, ANN201
    """A pipeline with no service.task_definition and one phase built FROM scratch with a static busybox."""
    if not Path("/bin/busybox").exists():
        pytest.skip("busybox-static is not installed (scripts/docker-up.sh installs it)")
    (tmp_path / "phases").mkdir()
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "phases" / "web.yaml").write_text("name: web\nimage: {context: images/web}\n")
    ctx = tmp_path / "images" / "web"
    (ctx / "www").mkdir(parents=True)
    (ctx / "www" / "health").write_text("busybox-ok\n")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    shutil.copy("/bin/busybox", ctx / "busybox")
    yield tmp_path
    snail(tmp_path, "sandbox", "down")


@pytest.mark.process
def test_scratch_image_runs_as_built_without_a_template(project: Path) -> None:
    """The bootstrap's inline python3 command never reaches the release: the busybox image answers and passes."""
    plan = snail(project, "plan")
    assert plan.returncode in (0, 2), plan.stderr  # the sandbox may not be up yet for a plan
    r = snail(project, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    from ecsbox import control

    info = control.status(project / ".snail")
    ecs = info.client("ecs")
    svc = ecs.describe_services(cluster="scratch", services=["scratch-web"])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    web = next(c for c in td["containerDefinitions"] if c["name"] == "web")
    assert "command" not in web and "entryPoint" not in web
    arns = ecs.list_tasks(cluster="scratch", serviceName="scratch-web", desiredStatus="RUNNING")["taskArns"]
    tasks = [t for t in ecs.describe_tasks(cluster="scratch", tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"]
    port = tasks[0]["containers"][0]["networkBindings"][0]["hostPort"]
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).text.strip() == "busybox-ok"
    status = json.loads(snail(project, "--output", "json", "status").stdout)
    assert status["phase"] == "web"
