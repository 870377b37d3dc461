"""The port probe runs what the task will run: a phase's `task.command` (and a template's entryPoint) replace the
image's CMD in the probe's container, as ECS replaces them in the task's. A command that exits fails the probe
before anything is pushed, though the image's own CMD would have answered /health (issue 19, 9b)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.errors import PortProbeFailed
from orchestrator.images import Images
from tests.e2e.conftest import IMAGES

pytestmark = pytest.mark.e2e

PIPELINE = """\
version: 1
service: {{cluster: c, name: probe-cmd, region: us-east-1, container: api, port: 5000{template}}}
registry: {{url: {registry}/snail-e2e/probe-cmd-{tag}}}
defaults:
  build_args: {{BASE_IMAGE: {base}}}
phases: [one]
"""


def _pipeline(tmp_path: Path, registry: str, build_args: dict[str, str], task: str, template: dict | None = None):  # noqa: ANN202
    """pipeline.yaml + phases/one.yaml building images/health-only (its CMD serves /health on 5000)."""
    shutil.copytree(IMAGES / "health-only", tmp_path / "images" / "health-only")
    (tmp_path / "phases").mkdir()
    line = ""
    if template is not None:
        (tmp_path / "phases" / "taskdef.json").write_text(json.dumps(template))
        line = ", task_definition: phases/taskdef.json"
    (tmp_path / "pipeline.yaml").write_text(
        PIPELINE.format(template=line, registry=registry, tag=uuid.uuid4().hex[:8], base=build_args["BASE_IMAGE"])
    )
    (tmp_path / "phases" / "one.yaml").write_text(f"name: one\nimage: {{context: images/health-only}}\n{task}")
    return load_pipeline(tmp_path / "pipeline.yaml")


def _resolve(pipeline, registry: str):  # noqa: ANN001, ANN202
    events: list[dict] = []
    images = Images(pipeline, AwsContext(region="us-east-1"), registry_url=registry, progress=events.append)
    return images, events


def test_a_task_command_that_exits_fails_the_probe(tmp_path, docker_client, registry, build_args) -> None:
    """task.command exits 4: the probe sees the exit (the image's CMD, which serves /health, is not what runs),
    says so with the command's output, and nothing is pushed."""
    p = _pipeline(
        tmp_path,
        registry,
        build_args,
        "task: {command: [python3, -c, \"import sys; print('worker mode: nothing to serve'); sys.exit(4)\"]}\n",
    )
    images, events = _resolve(p, registry)
    with pytest.raises(PortProbeFailed) as failed:
        images.resolve(p.phases[0])
    assert "the container exited with code 4 before answering" in str(failed.value)
    assert "worker mode: nothing to serve" in str(failed.value)
    assert not [e for e in events if e.get("event") == "push_done"]
    assert all(e.get("phase") == "one" for e in events if str(e.get("event", "")).startswith("probe_"))


def test_a_task_command_that_serves_passes_the_probe(tmp_path, docker_client, registry, build_args) -> None:
    """The control: a command that runs the app passes, and the image is pushed."""
    p = _pipeline(tmp_path, registry, build_args, "task: {command: [python3, app.py]}\n")
    images, events = _resolve(p, registry)
    resolved = images.resolve(p.phases[0])
    assert resolved.digest and any(e.get("event") == "probe_passed" for e in events)


def test_a_template_entry_point_is_what_the_probe_runs(tmp_path, docker_client, registry, build_args) -> None:
    """The template's container sets entryPoint (the phase no command): ECS runs it, and so does the probe."""
    template = {
        "family": "probe-cmd",
        "containerDefinitions": [
            {"name": "api", "image": "PLACEHOLDER", "entryPoint": ["sh", "-c", "echo migrating; exit 5"]}
        ],
    }
    p = _pipeline(tmp_path, registry, build_args, "", template=template)
    images, _ = _resolve(p, registry)
    with pytest.raises(PortProbeFailed, match="exited with code 5") as failed:
        images.resolve(p.phases[0])
    assert "migrating" in str(failed.value)
