"""Build secrets on the real Docker Engine and local registry: `image.build_secrets` reach the RUN line that mounts
them (BuildKit secret mounts, through the docker CLI) and no layer, image config or `docker history` line; a plain
build arg, for contrast, is in the history for anyone who pulls the image."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

pytestmark = pytest.mark.e2e

SECRET = "npm-build-secret-4f2a9c81e7"  # unique: finding it anywhere in the image is a leak

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PLAIN_FLAVOUR
RUN --mount=type=secret,id=NPM_TOKEN,required=true wc -c < /run/secrets/NPM_TOKEN > /secret-length \\
    && echo "flavour $PLAIN_FLAVOUR" > /flavour
"""

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


@pytest.mark.process
def test_a_build_secret_is_mounted_for_the_build_and_never_in_the_image_or_its_history(
    tmp_path, builder, target, build_args, docker_client
) -> None:  # noqa: ANN001
    """The secret reached the build (its length is in the image), the image is pushed, and neither `docker history
    --no-trunc`, the image config, nor the config blob the registry serves holds it; the plain build arg is there."""
    context = tmp_path / "secret-build"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    image = builder.build_and_push(
        "secret-build",
        context,
        target,
        {**build_args, "PLAIN_FLAVOUR": "vanilla-4711"},
        build_secrets={"NPM_TOKEN": SECRET},
    )
    assert image.built and image.pushed and image.digest

    length = docker_client.containers.run(image.tagged, ["cat", "/secret-length"], remove=True).decode().strip()
    assert length == str(len(SECRET))  # the RUN line read the mounted secret

    history = subprocess.run(
        ["docker", "history", "--no-trunc", image.tagged], capture_output=True, text=True, check=True
    ).stdout
    assert "PLAIN_FLAVOUR=vanilla-4711" in history  # a build arg is what history shows: this check can see leaks
    assert SECRET not in history
    config = json.dumps(docker_client.api.inspect_image(image.tagged))
    assert SECRET not in config

    manifest = requests.get(
        f"http://{target.registry}/v2/{target.name}/manifests/{image.digest}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    ).json()
    blob = requests.get(
        f"http://{target.registry}/v2/{target.name}/blobs/{manifest['config']['digest']}", timeout=10
    ).text
    assert "vanilla-4711" in blob and SECRET not in blob


def test_a_failed_secret_build_names_its_step_and_never_shows_the_secret(tmp_path, builder, target, build_args) -> None:  # noqa: ANN001
    """A RUN line that prints the mounted secret and fails: BuildError names the step, its output is masked."""
    from orchestrator.errors import BuildError

    context = tmp_path / "secret-fail"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN --mount=type=secret,id=NPM_TOKEN echo token is $(cat /run/secrets/NPM_TOKEN); echo npm ERR 401; exit 3\n"
    )
    with pytest.raises(BuildError) as failed:
        builder.build("secret-fail", context, target, build_args, build_secrets={"NPM_TOKEN": SECRET})
    message = str(failed.value)
    assert "build failed at step" in message and "npm ERR 401" in message
    assert "token is ****" in message and SECRET not in message
