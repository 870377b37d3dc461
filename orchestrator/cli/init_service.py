"""snail init --from-service CLUSTER/SERVICE: pipeline.yaml, phases/taskdef.json and one pinned phase, read from a
live ECS service in the shape of ecspresso's init: the live task definition as a template without the fields
RegisterTaskDefinition refuses, secrets kept as `valueFrom` references (never values), and the phase pinned to
the live image by digest."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import UsageError
from orchestrator.images import ECR_IMAGE


def _q(value: Any) -> str:
    """A YAML scalar or flow collection (JSON is YAML)."""
    return json.dumps(value)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`host/repo:tag` or `host/repo@sha256:…` -> (host/repo, tag, digest)."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, None, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag, None
    return image, "latest", None


def main_container(definition: dict[str, Any]) -> dict[str, Any]:
    """The container phases change: the first essential one with a port mapping (else the first)."""
    containers = definition.get("containerDefinitions") or []
    if not containers:
        raise UsageError("the service's task definition has no containers")
    with_ports = [c for c in containers if c.get("portMappings") and c.get("essential", True)]
    return (with_ports or containers)[0]


def render_pipeline(service: dict[str, Any], container: dict[str, Any], region: str, phase: str, image: str) -> str:
    """pipeline.yaml for the live service, commented."""
    cluster = service["clusterArn"].rsplit("/", 1)[-1]
    port = next((m.get("containerPort") for m in container.get("portMappings") or [] if m.get("containerPort")), None)
    if port is None:
        raise UsageError(f"container {container.get('name')!r} maps no port: snail needs the port the app listens on")
    lines = [
        f"# snail's pipeline for {cluster}/{service['serviceName']}, written by `snail init --from-service` from the",
        "# live service (reference: docs/pipeline.md). phases/taskdef.json is its task definition as a template.",
        "version: 1",
        "service:",
        f"  cluster: {_q(cluster)}",
        f"  name: {_q(service['serviceName'])}",
        f"  region: {_q(region)}",
        f"  container: {_q(container['name'])}",
        f"  port: {port}",
        "  task_definition: phases/taskdef.json",
        f"  desired_count: {int(service.get('desiredCount') or 1)}",
    ]
    if service.get("launchType") in ("FARGATE", "EC2", "EXTERNAL"):
        lines.append(f"  launch_type: {service['launchType']}")
    breaker = (service.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    lines.append(f"  circuit_breaker: {'true' if breaker.get('enable') else 'false'}")
    vpc = (service.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    if vpc:
        net = {
            "subnets": vpc.get("subnets") or [],
            "security_groups": vpc.get("securityGroups") or [],
            "assign_public_ip": vpc.get("assignPublicIp") == "ENABLED",
        }
        lines.append(
            f"  network: {{subnets: {_q(net['subnets'])}, security_groups: {_q(net['security_groups'])}, "
            f"assign_public_ip: {'true' if net['assign_public_ip'] else 'false'}}}"
        )
    balancers = [b for b in service.get("loadBalancers") or [] if b.get("targetGroupArn")]
    if balancers:
        lb = balancers[0]
        lines.append(
            f"  load_balancer: {{target_group_arn: {_q(lb['targetGroupArn'])}, "
            f"container_port: {int(lb.get('containerPort') or port)}}}"
        )
    name, _tag, _digest = split_image(image)
    ecr = ECR_IMAGE.match(name)
    lines.append("registry:")
    if ecr:
        lines += [f"  ecr: {_q(ecr.group('repo'))}        # the live image's ECR repository"]
    else:
        lines += [
            f"  url: {_q(name)}        # the live image's registry (credentials: SNAIL_REGISTRY_USERNAME/_PASSWORD)"
        ]
    lines += [
        "state:",
        "  backend: local                 # .snail/state.db (dynamodb: shared by several runners)",
        "defaults:",
        "  gates:                         # ecs-rollout is implied; add the checks your service answers, e.g.",
        "    - {type: ecs-rollout, timeout: 10m}",
        "    # - {type: http, path: /health, expect: {status: 200}, retries: {attempts: 10, wait: 3s}}",
        *(["    - {type: target-health}"] if balancers else []),
        "  bake: 0s",
        f"phases: [{phase}]                  # phases/{phase}.yaml: the live image, pinned by digest",
        "",
    ]
    return "\n".join(lines)


def template_of(definition: dict[str, Any]) -> dict[str, Any]:
    """The live task definition as a template: read-only fields dropped, secrets as their valueFrom references."""
    from orchestrator.taskdef import strip_read_only

    template = strip_read_only(definition)
    template.pop("tags", None)
    for cd in template.get("containerDefinitions", []):
        if cd.get("secrets"):
            cd["secrets"] = [{"name": s["name"], "valueFrom": s["valueFrom"]} for s in cd["secrets"]]
    return template


def live_digest(aws: Any, service: dict[str, Any], container: dict[str, Any]) -> str:
    """The digest the live image runs as: pinned in the definition, else a running task's, else ECR's for the tag."""
    from orchestrator.aws.ecr import EcrClient
    from orchestrator.aws.ecs import EcsClient

    name, tag, digest = split_image(container["image"])
    if digest:
        return digest
    ecs = EcsClient(aws)
    cluster = service["clusterArn"]
    arns = ecs.task_arns(cluster, service["serviceName"], "RUNNING")
    if arns:
        for task in ecs.describe_task_records(cluster, arns):
            if task.get("taskDefinitionArn") != service.get("taskDefinition"):
                continue
            for c in task.get("containers", []):
                if c.get("name") == container["name"] and str(c.get("imageDigest", "")).startswith("sha256:"):
                    return str(c["imageDigest"])
    ecr = ECR_IMAGE.match(name)
    if ecr and tag:
        from orchestrator.errors import SnailError

        try:
            details = EcrClient(aws).images(ecr.group("repo"), [{"imageTag": tag}])
        except SnailError as exc:
            raise UsageError(f"the digest of {container['image']} could not be read from ECR: {exc}") from None
        if details and details[0].get("imageDigest"):
            return str(details[0]["imageDigest"])
    raise UsageError(
        f"the live image {container['image']} is not pinned by digest and neither the running tasks nor ECR name "
        "its digest: write phases/*.yaml's image.ref as REPO@sha256:… by hand"
    )


def files_from_service(app: Any, target: str, phase: str) -> tuple[dict[str, str], str]:
    """Read CLUSTER/SERVICE and return {relative path: text} plus a one-line summary."""
    from orchestrator.aws.ecs import EcsClient
    from orchestrator.cli.reach import checked_context

    cluster, _, name = target.partition("/")
    if not cluster or not name or "/" in name:
        raise UsageError(f"--from-service {target!r}: give it as CLUSTER/SERVICE")
    region = app.region or "us-east-1"
    aws = checked_context(region, app.profile, app.endpoint_url, region_given=bool(app.region))
    ecs = EcsClient(aws)
    found = ecs.describe_service(cluster, name)
    service = found if found is not None and found.get("status") == "ACTIVE" else None
    if service is None:
        raise UsageError(f"no ACTIVE service {name!r} in cluster {cluster!r} ({region})")
    definition = ecs.definition(service["taskDefinition"])
    container = main_container(definition)
    digest = live_digest(aws, service, container)
    repo, _tag, _digest = split_image(container["image"])
    ref = f"{repo}@{digest}"
    phase_text = (
        f"# Phase {phase}: what runs now ({service['taskDefinition'].rsplit('/', 1)[-1]}), pinned by digest.\n"
        f"name: {phase}\nimage: {{ref: {_q(ref)}}}\n"
    )
    files = {
        "pipeline.yaml": render_pipeline(service, container, region, phase, container["image"]),
        "phases/taskdef.json": json.dumps(template_of(definition), indent=2, sort_keys=True) + "\n",
        f"phases/{phase}.yaml": phase_text,
    }
    summary = (
        f"service {cluster}/{name} ({service['taskDefinition'].rsplit('/', 1)[-1]}), phase {phase} pinned to {ref}"
    )
    return files, summary
