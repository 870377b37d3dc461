"""Pure pieces of the sandbox: image references, health-check mapping, the moto version pin."""

from __future__ import annotations

import pytest

from ecsbox import extension
from ecsbox.launchers import DockerLauncher, InstantLauncher, _docker_healthcheck, _split_ref


def test_ecr_uri_is_pulled_from_the_local_registry():
    """An ECR image URI is rewritten to the local registry; other references are left alone."""
    launcher = DockerLauncher(client=object(), registry="127.0.0.1:5055")
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shine-api-gateway@sha256:abc"
    assert launcher.resolve_image(ecr) == "127.0.0.1:5055/shine-api-gateway@sha256:abc"
    assert launcher.resolve_image("127.0.0.1:5055/x:1") == "127.0.0.1:5055/x:1"
    assert launcher.resolve_image("snail-base/python:3.11") == "snail-base/python:3.11"


def test_split_ref_handles_tags_digests_and_registry_ports():
    """Image references split into repository and tag/digest, a registry port is not a tag."""
    assert _split_ref("127.0.0.1:5055/repo:tag") == ("127.0.0.1:5055/repo", "tag")
    assert _split_ref("127.0.0.1:5055/repo") == ("127.0.0.1:5055/repo", "latest")
    assert _split_ref("127.0.0.1:5055/repo@sha256:ab") == ("127.0.0.1:5055/repo", "sha256:ab")


def test_health_check_maps_to_docker_and_is_disabled_without_one():
    """An ECS healthCheck becomes Docker's (nanoseconds); none disables the image's own HEALTHCHECK."""
    check = _docker_healthcheck({"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 3})
    assert check == {
        "test": ["CMD-SHELL", "true"],
        "interval": 5_000_000_000,
        "timeout": 2_000_000_000,
        "retries": 3,
        "start_period": 0,
    }
    assert _docker_healthcheck(None) == {"test": ["NONE"]}


def test_instant_launcher_reports_bindings_and_failures():
    """InstantLauncher runs at once on the given host port, or stops with the configured reason."""
    launcher = InstantLauncher(
        host_port_for=lambda image: 18080,
        fail_reason_for=lambda i: "CannotPullContainerError: x" if i == "bad" else None,
    )
    defs = [{"name": "api", "image": "good", "portMappings": [{"containerPort": 5000}]}]
    ok = launcher.start("t1", defs, {})
    assert launcher.status(ok).bindings == [
        {"bindIP": "127.0.0.1", "containerPort": 5000, "hostPort": 18080, "protocol": "tcp"}
    ]
    bad = launcher.start("t2", [{**defs[0], "image": "bad"}], {})
    assert launcher.status(bad)[:3] == ("STOPPED", None, "CannotPullContainerError: x")


def test_extension_refuses_an_unknown_moto_major():
    """The backend patch refuses a moto major version it was not written against."""
    extension.check_moto_version("5.2.1")
    with pytest.raises(RuntimeError, match="supports moto 5"):
        extension.check_moto_version("6.0.0")
