"""What a failed build or an absent engine tells the user to do: steps on their machine (docker pull, the
engine's service, a build arg), never a script of snail's own checkout, which a pipx install does not have."""

from __future__ import annotations

from orchestrator.build.builder import HOW_TO_START, _build_failure

OFFLINE = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host'


def test_an_unreachable_base_image_says_docker_pull_and_the_build_arg() -> None:
    """FROM python:3.11-slim with no registry in reach: the hint names `docker pull python:3.11-slim`, `docker
    load`, and the BASE_IMAGE build arg, and no scripts/ path."""
    message = _build_failure("one", "1/3", "FROM python:3.11-slim", OFFLINE, [])
    hint = message.split("\nhint: ", 1)[1]
    assert "`docker pull python:3.11-slim`" in hint and "docker load" in hint
    assert "BASE_IMAGE: ${SNAIL_BASE_IMAGE}" in hint
    assert "scripts/" not in message and "make-base-image" not in message


def test_a_base_image_from_a_build_arg_is_named_from_the_error() -> None:
    """FROM ${BASE_IMAGE}: the line does not say which image; the engine's error does."""
    error = "pull access denied for snail-base/python, repository does not exist or may require 'docker login'"
    assert "`docker pull snail-base/python`" in _build_failure("one", "2/7", "FROM ${BASE_IMAGE}", error, [])


def test_the_engine_hint_names_no_checkout_script() -> None:
    """An engine that does not answer: start it as the machine starts services."""
    assert "scripts/" not in HOW_TO_START and "docker info" in HOW_TO_START
