"""`snail run --create-service`: create the missing ECS service from the pipeline's own settings."""

from __future__ import annotations

from typing import Any

import structlog

from orchestrator.aws.errors import aws_call
from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Pipeline
from orchestrator.errors import ConfigError

log = structlog.get_logger("snail.doctor")


def deployment_configuration(circuit_breaker: bool) -> dict[str, Any]:
    """Rolling updates that start new tasks before stopping old ones, with the pipeline's circuit breaker."""
    return {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": circuit_breaker, "rollback": circuit_breaker},
    }


def network_configuration(pipeline: Pipeline, network: dict[str, Any] | None) -> dict[str, Any] | None:
    """The awsvpc networkConfiguration: the one given (bare or wrapped), else pipeline.yaml's service.network."""
    if network is not None:
        return network if "awsvpcConfiguration" in network else {"awsvpcConfiguration": dict(network)}
    net = pipeline.service.network
    if net is None or not net.subnets:
        return None
    cfg: dict[str, Any] = {
        "subnets": list(net.subnets),
        "assignPublicIp": "ENABLED" if net.assign_public_ip else "DISABLED",
    }
    if net.security_groups:
        cfg["securityGroups"] = list(net.security_groups)
    return {"awsvpcConfiguration": cfg}


def create_service(
    pipeline: Pipeline, aws: AwsContext, task_definition_arn: str, network: dict[str, Any] | None = None
) -> str:
    """Create the pipeline's ECS service on `task_definition_arn`; returns the service ARN."""
    s = pipeline.service
    netcfg = network_configuration(pipeline, network)
    if netcfg is None and s.launch_type == "FARGATE":
        raise ConfigError(
            str(pipeline.path),
            None,
            "creating a FARGATE service needs subnets: add service.network.subnets "
            "(and security_groups, assign_public_ip) to pipeline.yaml",
            key="service.network",
        )
    dc = deployment_configuration(s.circuit_breaker)
    kwargs: dict[str, Any] = dict(
        cluster=s.cluster,
        serviceName=s.name,
        taskDefinition=task_definition_arn,
        desiredCount=s.desired_count,
        launchType=s.launch_type,
        deploymentConfiguration=dc,
    )
    if netcfg is not None:
        kwargs["networkConfiguration"] = netcfg
    if s.load_balancer is not None:
        kwargs["loadBalancers"] = [
            {
                "targetGroupArn": s.load_balancer.target_group_arn,
                "containerName": s.container,
                "containerPort": s.load_balancer.container_port or s.port,
            }
        ]
    ecs = aws.client("ecs")
    with aws_call("ecs:CreateService"):
        svc = ecs.create_service(**kwargs)["service"]
    if not svc.get("deploymentConfiguration"):
        # moto drops deploymentConfiguration on create (notes/moto-and-docker.md); AWS returns it, so this
        # only runs where the emulator forgot it.
        with aws_call("ecs:UpdateService"):
            ecs.update_service(cluster=s.cluster, service=s.name, deploymentConfiguration=dc)
    log.info("service_created", service=s.name, cluster=s.cluster, revision=task_definition_arn)
    return str(svc["serviceArn"])
