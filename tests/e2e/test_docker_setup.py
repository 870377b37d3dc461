"""What the sandbox takes from the host (ecsbox.docker_setup): the registry it pushes to, chosen and started as
docs/sandbox.md says, and a clear exit when no Docker Engine answers."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from ecsbox import docker_setup
from ecsbox.errors import DockerUnavailable

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_snail_registry_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SNAIL_REGISTRY wins: nothing is started, nothing is stopped."""
    monkeypatch.setenv("SNAIL_REGISTRY", "registry.example:5000")
    choice = docker_setup.ensure_registry(tmp_path, _free_port())
    assert (choice.address, choice.how, choice.started) == ("registry.example:5000", "env", False)
    assert "from SNAIL_REGISTRY" in choice.describe() and not docker_setup.stop_registry(choice)
    assert list(tmp_path.iterdir()) == []


def test_a_registry_is_started_on_a_free_port_and_stopped(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docker_client,  # noqa: ANN001
) -> None:
    """No registry answers there: the docker-registry binary is started (registry:2 where it is not installed),
    its storage under the state folder; it answers /v2/, and stop_registry stops it."""
    monkeypatch.delenv("SNAIL_REGISTRY", raising=False)
    port = _free_port()
    choice = docker_setup.ensure_registry(tmp_path, port, client=docker_client)
    try:
        assert choice.address == f"127.0.0.1:{port}" and choice.started
        assert choice.how == ("binary" if shutil.which("docker-registry") else "container")
        assert docker_setup.registry_answering(choice.address)
        if choice.how == "binary":
            assert (tmp_path / "registry" / "data").is_dir() and (tmp_path / "registry" / "registry.pid").exists()
        again = docker_setup.ensure_registry(tmp_path, port, client=docker_client)
        assert (again.how, again.started) == ("running", False)  # found answering: not ours to stop
    finally:
        assert docker_setup.stop_registry(choice, client=docker_client)
    assert not docker_setup.registry_answering(choice.address, timeout=0.5)


def test_no_docker_engine_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An engine that does not answer: DockerUnavailable (exit 2) with the Debian/Ubuntu command and Docker
    Desktop."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(DockerUnavailable) as caught:
        docker_setup.docker_client()
    assert caught.value.exit_code == 2
    assert "sudo apt-get install -y docker.io" in str(caught.value) and "Docker Desktop" in str(caught.value)
