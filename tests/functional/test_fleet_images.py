"""One release, identical everywhere (issue 23): a built phase's image is one digest in every target's registry.

Against the real local registry (127.0.0.1:5055); each test uses its own repositories (worker-safe). The image is
pushed through the registry API (a config and a layer blob), so no Docker build is needed: a tag already pushed
somewhere is copied, never rebuilt."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.harness.cli import snail

REGISTRY = "127.0.0.1:5055"
ACCOUNT = "123456789012"


def push_image(repo: str, tag: str, salt: str) -> str:
    """Push a tiny image (config + one layer) as repo:tag through the registry API; its manifest digest."""
    base = f"http://{REGISTRY}/v2/{repo}"

    def blob(data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = requests.post(f"{base}/blobs/uploads/", timeout=10)
        where = start.headers["Location"]
        where = where if where.startswith("http") else f"http://{REGISTRY}{where}"
        sep = "&" if "?" in where else "?"
        assert requests.put(f"{where}{sep}digest={digest}", data=data, timeout=10).status_code == 201
        return {"digest": digest, "size": len(data)}

    config = json.dumps({"architecture": "amd64", "os": "linux", "salt": salt}).encode()
    layer = blob(f"layer {salt}".encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **blob(config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **layer}],
        }
    ).encode()
    ctype = "application/vnd.docker.distribution.manifest.v2+json"
    resp = requests.put(f"{base}/manifests/{tag}", data=manifest, headers={"Content-Type": ctype}, timeout=10)
    assert resp.status_code == 201, resp.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """A fleet of two targets, each with its own registry repository, whose one phase is built from a context."""
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=2)
    except requests.RequestException:
        pytest.fail(f"the local registry {REGISTRY} is not running (the Makefile's environment starts it)")
    uid = uuid.uuid4().hex[:10]
    repos = {"east": f"snail-test/fleet-{uid}-east", "west": f"snail-test/fleet-{uid}-west"}
    root = tmp_path / "svc"
    (root / "phases").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "app" / "Dockerfile").write_text(f"FROM scratch\nLABEL test={uid}\n")
    (root / "pipeline.yaml").write_text(
        "version: 1\n"
        "service: {cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, port: 5000}\n"
        f"registry: {{url: {REGISTRY}/{repos['east']}}}\n"
        "defaults: {gates: [{type: ecs-rollout, timeout: 1m, poll: 0.2s}], bake: 0s}\n"
        "phases: [v1]\n"
    )
    (root / "phases" / "v1.yaml").write_text("name: v1\nimage: {context: app}\n")
    (root / "fleet.yaml").write_text(
        "version: 1\n"
        "targets:\n"
        f"  east: {{cluster: shine-east, registry: {{url: {REGISTRY}/{repos['east']}}}}}\n"
        f"  west: {{cluster: shine-west, registry: {{url: {REGISTRY}/{repos['west']}}}}}\n"
        "waves:\n  - {name: one, targets: [east]}\n  - {name: two, targets: [west]}\n"
    )
    from orchestrator.cli.app import App
    from orchestrator.cli.fleet import CliTargets
    from orchestrator.fleet.loader import load_fleet, validate_fleet

    fleet = load_fleet(root / "fleet.yaml")
    targets = CliTargets(App(), fleet, validate_fleet(fleet))
    from orchestrator.images import Images

    pipeline = targets.pipelines["east"]
    tag = Images(pipeline, None).identity(pipeline.phase("v1"))  # type: ignore[arg-type]  # the content tag
    return {"root": root, "repos": repos, "fleet": fleet, "targets": targets, "tag": tag}


def digest_in(repo: str, tag: str) -> str | None:
    from orchestrator.build import RegistryTarget, registry_digest

    return registry_digest(RegistryTarget.from_url(f"{REGISTRY}/{repo}"), tag)


CLOSED_PORT = {"SNAIL_ENDPOINT_URL": "http://127.0.0.1:9"}  # an AWS endpoint nothing answers on


def test_an_image_built_once_is_copied_to_every_targets_registry_with_the_same_digest(world: dict[str, Any]) -> None:
    """Bullet 1: the phase's image, pushed once (east), reaches west's registry by copy: same digest, no build
    (no Docker is asked: the tag was already pushed somewhere)."""
    tag = world["tag"]
    digest = push_image(world["repos"]["east"], tag, "one")
    assert digest_in(world["repos"]["west"], tag) is None
    done = world["targets"].one_release(world["fleet"], None)
    assert digest_in(world["repos"]["west"], tag) == digest
    assert [im.to_dict()["registries"] for im in done] == [{"east": digest, "west": digest}]


def test_a_target_whose_registry_holds_another_digest_under_the_tag_is_refused(world: dict[str, Any]) -> None:
    """Bullet 3: west's registry holds another image under the release's content tag: `fleet plan` and `fleet
    run` refuse with exit 2 naming the target, the tag and both digests, before any AWS call (nothing changed)."""
    tag = world["tag"]
    good = push_image(world["repos"]["east"], tag, "good")
    stray = push_image(world["repos"]["west"], tag, "stray")
    for cmd in (["fleet", "plan"], ["fleet", "run", "--skip-preflight"]):
        out = snail(world["root"], *cmd, env=CLOSED_PORT)  # the AWS endpoint is a closed port: the refusal comes first
        assert out.returncode == 2, (cmd, out.stdout, out.stderr)
        assert "target west" in out.stderr and tag in out.stderr, out.stderr
        assert good in out.stderr and stray in out.stderr, out.stderr
    assert digest_in(world["repos"]["west"], tag) == stray  # nothing was overwritten


def test_fleet_plan_shows_the_digest_per_phase(world: dict[str, Any], moto_server: str) -> None:
    """Bullet 2: every target runs the phase by the same digest, and `fleet plan` shows it (text and JSON)."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=moto_server)
    for cluster in ("shine-east", "shine-west"):
        ecs.create_cluster(clusterName=cluster)
        td = ecs.register_task_definition(
            family="shine-api-gateway",
            containerDefinitions=[{"name": "api", "image": f"{REGISTRY}/x:0", "memory": 256}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName="shine-api-gateway", taskDefinition=td, desiredCount=1)
    tag = world["tag"]
    digest = push_image(world["repos"]["east"], tag, "one")
    push_image(world["repos"]["west"], tag, "one")  # the same bytes: the same digest
    out = snail(world["root"], "fleet", "plan", env={"SNAIL_ENDPOINT_URL": moto_server})
    assert out.returncode == 0, out.stderr
    assert f"image v1 {tag}: {digest} in 2/2 registries" in out.stdout, out.stdout
    doc = json.loads(
        snail(world["root"], "--output", "json", "fleet", "plan", env={"SNAIL_ENDPOINT_URL": moto_server}).stdout
    )
    assert doc["images"] == [
        {"phase": "v1", "tag": tag, "digest": digest, "registries": {"east": digest, "west": digest}}
    ]
    for wave in doc["waves"]:
        assert [ph["digest"] for row in wave["plan"] for ph in row["phases"]] == [digest]
