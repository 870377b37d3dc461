"""taskdef.runs_as: a revision snail did not register runs what a phase would register, but for SNAIL_PHASE and
for naming its image by tag instead of by digest (the adoption after `snail init --from-service`)."""

from __future__ import annotations

import copy

from orchestrator.taskdef import runs_as

TAGGED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:v7"
PINNED = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:" + "a" * 64
LIVE = {
    "family": "shop",
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:1",
    "revision": 1,
    "status": "ACTIVE",
    "cpu": "256",
    "containerDefinitions": [
        {"name": "sidecar", "image": "public.ecr.aws/xray/aws-xray-daemon:3", "essential": False, "cpu": 0},
        {"name": "web", "image": TAGGED, "cpu": 0, "portMappings": [{"containerPort": 8080}]},
    ],
}


def _desired(image: str = PINNED, **web: object) -> dict:
    td = copy.deepcopy({k: v for k, v in LIVE.items() if k not in ("taskDefinitionArn", "revision", "status")})
    cd = td["containerDefinitions"][1]
    cd.pop("cpu")  # a template rarely says what ECS fills in
    cd.update({"image": image, "environment": [{"name": "SNAIL_PHASE", "value": "live"}], **web})
    return td


def _tag_names(ref: str, pinned: str) -> bool:
    return (ref, pinned) == (TAGGED, PINNED)


def test_the_same_spec_with_the_image_by_its_digest_runs_as_the_live_revision() -> None:
    """SNAIL_PHASE, read-only fields and ECS's cpu 0 are no difference; the tag names the pinned digest."""
    assert runs_as(LIVE, _desired(), "web", _tag_names)


def test_another_image_or_any_other_change_does_not() -> None:
    """A digest the tag does not name, another variable, another port: a release, not an adoption."""
    assert not runs_as(LIVE, _desired(), "web", lambda ref, pinned: False)
    assert not runs_as(
        LIVE,
        _desired(environment=[{"name": "FEATURE", "value": "on"}, {"name": "SNAIL_PHASE", "value": "live"}]),
        "web",
        _tag_names,
    )
    assert not runs_as(LIVE, _desired(portMappings=[{"containerPort": 9090}]), "web", _tag_names)
    sidecar_changed = _desired()
    sidecar_changed["containerDefinitions"][0]["image"] = "public.ecr.aws/xray/aws-xray-daemon:4"
    assert not runs_as(LIVE, sidecar_changed, "web", _tag_names)
