"""Fixtures for end-to-end tests on the real Docker Engine and the local registry (scripts/docker-up.sh)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = REPO_ROOT / "images"
PHASES = ("health-only", "hybrid-ml", "optimized", "enhanced")
START_INFRA = "start it with scripts/docker-up.sh"


def _unavailable(reason: str) -> None:
    """Skip on a developer machine without Docker; under CI=true a missing engine is a failure, never a skip."""
    if os.environ.get("CI", "").lower() in ("", "0", "false", "no"):
        pytest.skip(f"{reason} ({START_INFRA}); under CI=true this fails instead")
    pytest.fail(f"{reason} under CI: {START_INFRA}", pytrace=False)


@pytest.fixture(scope="session")
def docker_client():
    """A docker SDK client to a live engine (`docker info` must succeed)."""
    info = subprocess.run(["docker", "info"], capture_output=True, text=True) if _has_cli() else None
    if info is not None and info.returncode != 0:
        _unavailable(f"`docker info` fails: {(info.stderr.strip().splitlines() or ['no output'])[-1]}")
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:
        _unavailable(f"Docker Engine not reachable: {e}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry() -> str:
    """host:port of the local OCI registry (env SNAIL_REGISTRY, default 127.0.0.1:5055), answering /v2/."""
    address = os.environ.get("SNAIL_REGISTRY", "127.0.0.1:5055")
    try:
        requests.get(f"http://{address}/v2/", timeout=3).raise_for_status()
    except requests.RequestException as e:
        _unavailable(f"no registry answering http://{address}/v2/: {type(e).__name__}")
    return address


@pytest.fixture(scope="session")
def build_args(docker_client) -> dict[str, str]:
    """BASE_IMAGE for the phase Dockerfiles: the offline base (env SNAIL_BASE_IMAGE) that must exist locally."""
    base = os.environ.get("SNAIL_BASE_IMAGE", "snail-base/python:3.11")
    import docker

    try:
        docker_client.images.get(base)
    except docker.errors.ImageNotFound:
        _unavailable(f"base image {base} missing: run scripts/make-base-image.sh")
    return {"BASE_IMAGE": base}


@pytest.fixture(scope="session")
def target(registry, docker_client):
    """A repository unique to this test session, so the first build of each phase really builds and pushes."""
    from orchestrator.build import RegistryTarget

    session_repo = RegistryTarget.from_url(f"{registry}/snail-e2e/images-{uuid.uuid4().hex[:8]}", env={})
    yield session_repo
    _untag_local(session_repo.repository)


@pytest.fixture(scope="session")
def progress_events() -> list[dict]:
    """Every progress event the session's builder emitted."""
    return []


@pytest.fixture(scope="session")
def builder(docker_client, progress_events):
    """An ImageBuilder on the live engine, recording its progress events."""
    from orchestrator.build import ImageBuilder

    return ImageBuilder(docker_client, progress=progress_events.append)


@pytest.fixture
def run_container(docker_client):
    """Start an image with its port 5000 on 127.0.0.1; returns (base_url, container); always removed."""
    started = []

    def run(image: str, env: dict[str, str] | None = None, port: int = 5000, wait_path: str = "/health"):
        container = docker_client.containers.run(
            image,
            detach=True,
            environment=env or {},
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={"snail-trail.role": "e2e-test"},
        )
        started.append(container)
        container.reload()
        host_port = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]
        base_url = f"http://127.0.0.1:{host_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(base_url + wait_path, timeout=1)
                return base_url, container
            except requests.RequestException as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{image} never answered {wait_path}: {container.logs().decode()[-2000:]}"
                    ) from exc
                time.sleep(0.1)

    yield run
    for container in started:
        container.remove(force=True)


def _untag_local(repository: str) -> None:
    """Drop this session's local tags (layers stay cached for the next session; the registry keeps its copy)."""
    import docker

    client = docker.from_env()
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.startswith(repository + ":"):
                client.images.remove(tag, noprune=True)
    client.close()


def _has_cli() -> bool:
    from shutil import which

    return which("docker") is not None


def pytest_collection_modifyitems(items):
    """Tests that need the engine or the registry carry the `e2e` marker (`-m "not e2e"` leaves them out)."""
    engine_fixtures = {"docker_client", "registry", "builder", "pushed", "run_container"}
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents and engine_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker("e2e")
