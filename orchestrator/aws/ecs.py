"""The ECS adapter: domain verbs over boto3, read-only views with yes/no properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.arns import family_of, revision_of, short_name
from orchestrator.aws.errors import aws_call
from orchestrator.aws.session import AwsContext
from orchestrator.config.model import ServiceSpec
from orchestrator.errors import ConfigError, NotFound


@dataclass(frozen=True)
class Deployment:
    """One entry of a service's `deployments`."""

    id: str
    status: str
    task_definition: str
    rollout_state: str | None
    rollout_reason: str
    desired: int
    running: int
    pending: int
    failed: int
    created_at: datetime | None = None
    updated_at: datetime | None = None  # ECS stamps it on every change: for a COMPLETED one, its completion

    @property
    def is_primary(self) -> bool:
        """The deployment ECS is rolling towards."""
        return self.status == "PRIMARY"

    @property
    def is_complete(self) -> bool:
        """ECS says the rollout completed and every desired task runs."""
        return self.rollout_state == "COMPLETED" and self.running == self.desired

    @property
    def has_failed(self) -> bool:
        """ECS gave up on this deployment (circuit breaker or otherwise)."""
        return self.rollout_state == "FAILED"

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Deployment:
        """Build from describe_services' shape."""
        return cls(
            id=d.get("id", ""),
            status=d.get("status", ""),
            task_definition=d.get("taskDefinition", ""),
            rollout_state=d.get("rolloutState"),
            rollout_reason=d.get("rolloutStateReason", ""),
            desired=int(d.get("desiredCount", 0)),
            running=int(d.get("runningCount", 0)),
            pending=int(d.get("pendingCount", 0)),
            failed=int(d.get("failedTasks", 0)),
            created_at=d.get("createdAt"),
            updated_at=d.get("updatedAt"),
        )


@dataclass(frozen=True)
class ServiceView:
    """What describe_services says about one service."""

    arn: str
    name: str
    status: str
    task_definition: str
    desired: int
    running: int
    pending: int
    deployments: tuple[Deployment, ...]
    events: tuple[dict[str, Any], ...] = ()
    network: dict[str, Any] = field(default_factory=dict)
    load_balancers: tuple[dict[str, Any], ...] = ()
    deployment_configuration: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def primary(self) -> Deployment | None:
        """The PRIMARY deployment, if any."""
        return next((d for d in self.deployments if d.is_primary), None)

    @property
    def others(self) -> tuple[Deployment, ...]:
        """Deployments still draining (ACTIVE) besides the primary."""
        return tuple(d for d in self.deployments if not d.is_primary)

    @classmethod
    def from_api(cls, s: dict[str, Any]) -> ServiceView:
        """Build from describe_services' shape."""
        return cls(
            arn=s.get("serviceArn", ""),
            name=s.get("serviceName", ""),
            status=s.get("status", ""),
            task_definition=s.get("taskDefinition", ""),
            desired=int(s.get("desiredCount", 0)),
            running=int(s.get("runningCount", 0)),
            pending=int(s.get("pendingCount", 0)),
            deployments=tuple(Deployment.from_api(d) for d in s.get("deployments", [])),
            events=tuple(s.get("events", [])),
            network=s.get("networkConfiguration") or {},
            load_balancers=tuple(s.get("loadBalancers", [])),
            deployment_configuration=s.get("deploymentConfiguration") or {},
            raw=s,
        )


@dataclass(frozen=True)
class TaskView:
    """One task: its revision, status, stop reason, container exit codes and network endpoints."""

    arn: str
    task_definition: str
    last_status: str
    desired_status: str
    started_by: str
    stopped_reason: str
    containers: tuple[dict[str, Any], ...]
    attachments: tuple[dict[str, Any], ...]
    health: str = "UNKNOWN"

    @property
    def short_id(self) -> str:
        """The task id as the console shows it."""
        return short_name(self.arn)

    @classmethod
    def from_api(cls, t: dict[str, Any]) -> TaskView:
        """Build from describe_tasks' shape."""
        return cls(
            arn=t.get("taskArn", ""),
            task_definition=t.get("taskDefinitionArn", ""),
            last_status=t.get("lastStatus", ""),
            desired_status=t.get("desiredStatus", ""),
            started_by=t.get("startedBy", ""),
            stopped_reason=t.get("stoppedReason", ""),
            containers=tuple(t.get("containers", [])),
            attachments=tuple(t.get("attachments", [])),
            health=t.get("healthStatus", "UNKNOWN"),
        )

    def private_ip(self) -> str | None:
        """The awsvpc ENI's private address, if the task has one."""
        return self._eni_detail("privateIPv4Address")

    def eni_id(self) -> str | None:
        """The awsvpc ENI id, if the task has one."""
        return self._eni_detail("networkInterfaceId")

    def _eni_detail(self, name: str) -> str | None:
        for att in self.attachments:
            if att.get("type") == "ElasticNetworkInterface":
                for d in att.get("details", []):
                    if d.get("name") == name:
                        return d.get("value")
        return None


# Fields describe_task_definition returns that register_task_definition refuses.
READ_ONLY_TASKDEF_FIELDS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)


class EcsClient:
    """ECS in the release engineer's words."""

    def __init__(self, aws: AwsContext) -> None:
        self._ecs = aws.client("ecs")

    def cluster(self, name: str) -> dict[str, Any] | None:
        """The cluster as ECS describes it (raw, any status), or None when it is MISSING."""
        with aws_call("ecs:DescribeClusters"):
            out = self._ecs.describe_clusters(clusters=[name])
        found = out.get("clusters") or []
        return dict(found[0]) if found else None

    def describe_service(self, cluster: str, name: str) -> dict[str, Any] | None:
        """The service as ECS describes it (raw, any status: an INACTIVE one too), or None when it is MISSING."""
        with aws_call("ecs:DescribeServices"):
            out = self._ecs.describe_services(cluster=cluster, services=[name])
        svcs = out.get("services") or []
        return dict(svcs[0]) if svcs else None

    def service_record(self, cluster: str, name: str) -> dict[str, Any] | None:
        """The service as ECS describes it (raw), or None when it is MISSING or INACTIVE (deleted)."""
        found = self.describe_service(cluster, name)
        if found is None or found.get("status") == "INACTIVE":
            return None
        return found

    def definition(self, revision: str) -> dict[str, Any]:
        """A revision's definition, without its tags."""
        with aws_call("ecs:DescribeTaskDefinition"):
            return dict(self._ecs.describe_task_definition(taskDefinition=revision)["taskDefinition"])

    def service(self, cluster: str, name: str) -> ServiceView | None:
        """The service, or None when ECS says it is MISSING."""
        record = self.service_record(cluster, name)
        return ServiceView.from_api(record) if record is not None else None

    def require_service(self, cluster: str, name: str) -> ServiceView:
        """The service; NotFound (naming --create-service) when it does not exist."""
        svc = self.service(cluster, name)
        if svc is None:
            raise NotFound(
                "ecs:DescribeServices",
                "MISSING",
                f"service {name!r} does not exist in cluster {cluster!r} "
                "(create it with `snail run --create-service`, or check the cluster/region)",
            )
        return svc

    def task_definition(self, revision: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A revision's definition and its tags."""
        with aws_call("ecs:DescribeTaskDefinition"):
            out = self._ecs.describe_task_definition(taskDefinition=revision, include=["TAGS"])
        tags = {t["key"]: t["value"] for t in out.get("tags", [])}
        return out["taskDefinition"], tags

    def latest_revision(self, family: str) -> str | None:
        """The newest ACTIVE revision ARN of a family (sorted here: moto ignores `sort`)."""
        arns: list[str] = []
        with aws_call("ecs:ListTaskDefinitions"):
            pager = self._ecs.get_paginator("list_task_definitions")
            for page in pager.paginate(familyPrefix=family, status="ACTIVE", sort="DESC"):
                arns.extend(a for a in page.get("taskDefinitionArns", []) if family_of(a) == family)
        return max(arns, key=lambda a: revision_of(a) or 0) if arns else None

    def register_revision(self, definition: dict[str, Any], tags: dict[str, str]) -> str:
        """Register a new revision; returns its ARN."""
        body = {k: v for k, v in definition.items() if k not in READ_ONLY_TASKDEF_FIELDS}
        if tags:
            body["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        with aws_call("ecs:RegisterTaskDefinition"):
            out = self._ecs.register_task_definition(**body)
        return out["taskDefinition"]["taskDefinitionArn"]

    def update_service(self, cluster: str, name: str, revision_arn: str) -> ServiceView:
        """Point the service at a revision (ECS starts a new deployment)."""
        with aws_call("ecs:UpdateService"):
            out = self._ecs.update_service(cluster=cluster, service=name, taskDefinition=revision_arn)
        return ServiceView.from_api(out["service"])

    def stop_task(self, cluster: str, arn: str, reason: str) -> None:
        """Stop one task (ECS drains it; a service's scheduler replaces it with a task of the PRIMARY's revision)."""
        with aws_call("ecs:StopTask"):
            self._ecs.stop_task(cluster=cluster, task=arn, reason=reason[:255])

    def task_records(self, cluster: str, service: str, *statuses: str) -> list[dict[str, Any]]:
        """The service's tasks (raw) with these desired statuses (default RUNNING): one list per status, then one
        batched describe per 100 tasks."""
        arns: list[str] = []
        for status in statuses or ("RUNNING",):
            with aws_call("ecs:ListTasks"):
                pager = self._ecs.get_paginator("list_tasks")
                for page in pager.paginate(cluster=cluster, serviceName=service, desiredStatus=status):
                    arns.extend(a for a in page.get("taskArns", []) if a not in arns)
        out: list[dict[str, Any]] = []
        for i in range(0, len(arns), 100):
            with aws_call("ecs:DescribeTasks"):
                resp = self._ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])
            out.extend(resp.get("tasks", []))
        return out

    def task_arns(self, cluster: str, service: str, desired_status: str = "RUNNING") -> list[str]:
        """The ARNs of the service's tasks with this desired status (ListTasks only: no describe)."""
        arns: list[str] = []
        with aws_call("ecs:ListTasks"):
            pager = self._ecs.get_paginator("list_tasks")
            for page in pager.paginate(cluster=cluster, serviceName=service, desiredStatus=desired_status):
                arns.extend(a for a in page.get("taskArns", []) if a not in arns)
        return arns

    def describe_tasks(self, cluster: str, arns: list[str]) -> list[TaskView]:
        """These tasks (up to 100), as views: their status and why they stopped."""
        return [TaskView.from_api(t) for t in self.describe_task_records(cluster, arns)]

    def describe_task_records(self, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
        """These tasks (up to 100) as DescribeTasks says them (raw)."""
        if not arns:
            return []
        with aws_call("ecs:DescribeTasks"):
            resp = self._ecs.describe_tasks(cluster=cluster, tasks=arns[:100])
        return list(resp.get("tasks", []))

    def endpoint_url(self) -> str:
        """Where this client's requests go (the regional endpoint, or the one given)."""
        return str(self._ecs.meta.endpoint_url)

    def tasks(self, cluster: str, service: str, desired_status: str = "RUNNING") -> list[TaskView]:
        """The service's tasks with this desired status, as views."""
        return [TaskView.from_api(t) for t in self.task_records(cluster, service, desired_status)]

    def create_service(self, spec: ServiceSpec, revision_arn: str, source: str = "pipeline.yaml") -> str:
        """Create the pipeline's service on `revision_arn` (`run --create-service`); returns the service ARN."""
        netcfg = network_configuration(spec)
        if netcfg is None and spec.launch_type == "FARGATE":
            raise ConfigError(
                source,
                None,
                "creating a FARGATE service needs subnets: add service.network.subnets "
                "(and security_groups, assign_public_ip) to pipeline.yaml",
                key="service.network",
            )
        dc = deployment_configuration(spec.circuit_breaker)
        kwargs: dict[str, Any] = dict(
            cluster=spec.cluster,
            serviceName=spec.name,
            taskDefinition=revision_arn,
            desiredCount=spec.desired_count,
            launchType=spec.launch_type,
            deploymentConfiguration=dc,
        )
        if netcfg is not None:
            kwargs["networkConfiguration"] = netcfg
        if spec.load_balancer is not None:
            kwargs["loadBalancers"] = [
                {
                    "targetGroupArn": spec.load_balancer.target_group_arn,
                    "containerName": spec.container,
                    "containerPort": spec.load_balancer.container_port or spec.port,
                }
            ]
        with aws_call("ecs:CreateService"):
            svc = self._ecs.create_service(**kwargs)["service"]
        if not svc.get("deploymentConfiguration"):
            # moto drops deploymentConfiguration on create; AWS returns it, so this runs only on the emulator.
            with aws_call("ecs:UpdateService"):
                self._ecs.update_service(cluster=spec.cluster, service=spec.name, deploymentConfiguration=dc)
        return str(svc["serviceArn"])


def deployment_configuration(circuit_breaker: bool) -> dict[str, Any]:
    """Rolling updates that start new tasks before stopping old ones, with the pipeline's circuit breaker."""
    return {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": circuit_breaker, "rollback": circuit_breaker},
    }


def network_configuration(spec: ServiceSpec) -> dict[str, Any] | None:
    """The awsvpc networkConfiguration from pipeline.yaml's service.network (None without subnets)."""
    net = spec.network
    if net is None or not net.subnets:
        return None
    cfg: dict[str, Any] = {
        "subnets": list(net.subnets),
        "assignPublicIp": "ENABLED" if net.assign_public_ip else "DISABLED",
    }
    if net.security_groups:
        cfg["securityGroups"] = list(net.security_groups)
    return {"awsvpcConfiguration": cfg}
