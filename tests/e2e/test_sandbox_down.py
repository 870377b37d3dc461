"""`snail sandbox down` is quick: a sandbox with a running task container goes away in a few seconds
(measured 2.7-3.0 s before the daemon's exit stopped waiting on leftover worker threads, ~1.5 s after)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ecsbox.daemon import sandbox_id_for

pytestmark = pytest.mark.e2e


@pytest.mark.process
def test_down_is_quick_and_removes_the_containers(make_pipeline, docker_client) -> None:  # noqa: ANN001
    """up (service running as a real container), then down: under 5 s, no container of this sandbox left."""
    path = make_pipeline()

    def snail(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", "-f", str(path), *args], capture_output=True, text=True, timeout=300
        )

    up = snail("sandbox", "up")
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        # the seconds it takes are not silent: said first, and said when done (issue 19 item 7)
        said = [line for line in up.stderr.splitlines() if "starting the sandbox" in line]
        assert len(said) == 2 and "done in" in said[1], up.stderr[-2000:]
        label = f"snail-sandbox-id={sandbox_id_for(path.parent / '.snail')}"
        assert docker_client.containers.list(filters={"label": label})  # the bootstrap task really runs
        again = snail("sandbox", "up")  # already up and seeded for this service: nothing to announce
        assert again.returncode == 0 and "starting the sandbox" not in again.stderr, again.stderr[-2000:]
    finally:
        started = time.monotonic()
        down = snail("sandbox", "down")
        took = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert "daemon stopped" in down.stdout
    assert took < 5.0, f"sandbox down took {took:.1f}s"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
