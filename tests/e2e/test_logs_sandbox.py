"""`snail logs` against the sandbox with a real container: the sandbox ships the container's output to moto's
CloudWatch Logs under the task definition's awslogs group and `prefix/container/task-id` streams, and the same
boto3 code that reads AWS reads it back, once or following new lines."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory, docker_client, registry, build_args):
    """A copy of the reference pipeline reduced to its first phase, with its own sandbox."""
    root = tmp_path_factory.mktemp("logs-project")
    text = (REPO_ROOT / "pipeline.yaml").read_text()
    (root / "pipeline.yaml").write_text(
        text.replace("phases: [health-only, hybrid-ml, optimized, enhanced]", "phases: [health-only]")
    )
    shutil.copytree(REPO_ROOT / "phases", root / "phases")
    shutil.copytree(REPO_ROOT / "images", root / "images")
    yield root
    snail(root, "sandbox", "down")


def env_for(root: Path) -> dict[str, str]:
    """The environment of `snail --sandbox` in the project copy (its own sandbox port)."""
    env = {
        **os.environ,
        "SNAIL_SANDBOX": "1",
        "SNAIL_FILE": str(root / "pipeline.yaml"),
        "SNAIL_SANDBOX_PORT": os.environ.get("SNAIL_E2E_LOGS_SANDBOX_PORT", "4597"),
    }
    env.setdefault("SNAIL_BASE_IMAGE", "snail-base/python:3.11")
    return env


def snail(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`snail --sandbox …` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env_for(root),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )


def endpoint(root: Path) -> str:
    """http://127.0.0.1:port of the service's running task."""
    from ecsbox import control

    ecs = control.status(root / ".snail").client("ecs")
    arns = ecs.list_tasks(cluster="shine", serviceName="shine-api-gateway", desiredStatus="RUNNING")["taskArns"]
    task = ecs.describe_tasks(cluster="shine", tasks=arns)["tasks"][0]
    return f"http://127.0.0.1:{task['containers'][0]['networkBindings'][0]['hostPort']}"


@pytest.mark.process
def test_logs_of_a_real_container_once_and_following(project) -> None:
    """After a run, `snail logs` prints the app's startup line from its stream; `--follow` prints a request made
    afterwards within seconds and stops on Ctrl-C with exit 0."""
    assert snail(project, "sandbox", "up").returncode == 0
    run = snail(project, "run")
    assert run.returncode == 0, run.stderr[-3000:]
    deadline = time.monotonic() + 15
    while True:
        logs = snail(project, "logs", timeout=120)
        assert logs.returncode == 0, logs.stderr
        if "listening on 0.0.0.0:5000" in logs.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    lines = logs.stdout.splitlines()
    assert lines[0].startswith("# live revision shine-api-gateway:2:")
    assert any(
        line.split(" ", 2)[1].startswith("api/") and "health-only 1.0.0 listening on 0.0.0.0:5000" in line
        for line in lines[1:]
    ), logs.stdout

    follow = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "logs", "--follow", "--since", "1s"],
        env=env_for(project),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a test run started in the background (`.ci/run &` from a script)
        # passes SIGINT ignored to its children, and Python then never turns it into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen: list[str] = []  # stdout: the log lines
    said: list[str] = []  # stderr: the header, then any complaint
    readers = [
        threading.Thread(target=lambda: seen.extend(iter(follow.stdout.readline, "")), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: said.extend(iter(follow.stderr.readline, "")), daemon=True),  # type: ignore[union-attr]
    ]
    for r in readers:
        r.start()
    marker = f"/health?from-the-test-{os.getpid()}"
    try:
        # --follow is reading once it has printed its header (on a loaded machine its start takes seconds)
        until(lambda: any(line.startswith("# live revision") for line in said), 60)
        assert requests.get(endpoint(project) + marker, timeout=5).status_code == 200
        until(lambda: any(marker in line for line in seen), 30)  # shipped every 0.5 s, read every 2 s
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=30)
        for r in readers:
            r.join(timeout=5)
    assert follow.returncode == 0, "".join(said)
    assert any(marker in line for line in seen), "".join(seen) + "".join(said)


def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait (polling every 0.2 s) until condition() holds, or the seconds pass."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
