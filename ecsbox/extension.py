"""A small, version-pinned extension of moto's ECS backend so deployments can move like ECS's.

moto 5.x keeps one PRIMARY deployment per service forever, drops `deploymentConfiguration` on create, stores
`taskDefinition` as the raw string given to `update_service`, and filters nothing by `serviceName` in
`list_tasks` (notes/moto-and-docker.md). This module patches exactly those behaviours; the agent
(`agent.py`) then drives the deployment records from what the tasks really do.

Everything here runs inside the moto process. The backend is shared between moto's request threads and the
agent's thread, so every ECS request (including serialisation of the response) and every agent mutation
holds `BACKEND_LOCK`.
"""

from __future__ import annotations

import copy
import math
import threading
import uuid
from typing import Any

import moto
import structlog
from moto.cloudwatch.models import Statistics
from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.models import EC2ContainerServiceBackend, Service, Task
from moto.elbv2.models import ELBv2Backend
from moto.moto_api._internal import mock_random

from ecsbox import deployments as sd

log = structlog.get_logger(__name__)

# The patches below reach into moto internals (Service/Task attributes, backend method signatures, the
# response class's `call_action`). They are written against 5.x; a major upgrade must be re-checked.
SUPPORTED_MOTO_MAJOR = "5."

BACKEND_LOCK = threading.RLock()

# What ECS returns for a service created without a deploymentConfiguration.
DEFAULT_DEPLOYMENT_CONFIGURATION: dict[str, Any] = {
    "deploymentCircuitBreaker": {"enable": False, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
MAX_EVENTS = 100  # ECS keeps the last 100 service events

_ORIGINALS: dict[str, Any] = {}


def check_moto_version(version: str | None = None) -> None:
    """Refuse to patch a moto whose major version we have not read."""
    version = version or moto.__version__
    if not version.startswith(SUPPORTED_MOTO_MAJOR):
        raise RuntimeError(
            f"ecsbox.extension supports moto {SUPPORTED_MOTO_MAJOR}x, found {version}: "
            "re-check the patched internals before widening the pin"
        )


def ecs_backend(account_id: str, region: str) -> EC2ContainerServiceBackend:
    """The in-process moto ECS backend for one account and region."""
    from moto.backends import get_backend

    return get_backend("ecs")[account_id][region]


# ----------------------------------------------------------------------------------------------- records


def new_deployment_id() -> str:
    """An ECS-shaped deployment id (`ecs-svc/` + 19 digits)."""
    return f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"


def service_label(service: Service) -> str:
    """The prefix every ECS service event starts with."""
    return f"(service {service.name})"


def add_event(service: Service, message: str) -> dict[str, Any]:
    """Prepend an ECS-style event (newest first, capped like ECS) and return it."""
    event = {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message}
    # Copy-on-write: a response may be serialising the old list in another thread.
    service.events = [event, *list(service.events or [])][:MAX_EVENTS]
    log.debug("sandbox_service_event", service=service.name, message=message)
    return event


def make_deployment(service: Service, task_definition_arn: str | None, status: str = "PRIMARY") -> dict[str, Any]:
    """A new deployment record shaped like ECS's, IN_PROGRESS with no tasks yet."""
    dep_id = new_deployment_id()
    now = utcnow()
    launch_type = service.launch_type
    return {
        "id": dep_id,
        "status": status,
        "taskDefinition": task_definition_arn,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": launch_type,
        "platformVersion": service.platform_version or ("LATEST" if launch_type == "FARGATE" else None),
        "platformFamily": "Linux" if launch_type == "FARGATE" else None,
        "networkConfiguration": copy.deepcopy(service.network_configuration) or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
    }


def primary_deployment(service: Service) -> dict[str, Any] | None:
    """The service's PRIMARY deployment record, if any."""
    return next((d for d in service.deployments or [] if d.get("status") == "PRIMARY"), None)


def start_deployment(
    service: Service,
    task_definition_arn: str,
    reason: str = "update",
    backend: EC2ContainerServiceBackend | None = None,
    keep_tasks: bool = False,
) -> dict[str, Any]:
    """Make a new PRIMARY deployment for `task_definition_arn`, demoting the current PRIMARY to ACTIVE.

    With `backend`, the service deployment (ECS's ServiceDeployment record) is recorded too. With `keep_tasks`
    (an UpdateService that changes nothing but the revision), the tasks of an older deployment that still runs this
    revision become the new PRIMARY's (the agent adopts them: see EcsAgent._keep_old_tasks).
    """
    new = make_deployment(service, task_definition_arn)
    others = []
    for dep in service.deployments or []:
        if dep.get("status") == "PRIMARY":
            dep = {**dep, "status": "ACTIVE", "updatedAt": utcnow()}
        others.append(dep)
    if keep_tasks:
        same = [d["id"] for d in others if d.get("taskDefinition") == task_definition_arn]
        if same:
            service.sandbox_keep = {new["id"]: same}
    service.deployments = [new, *others]
    service.task_definition = task_definition_arn
    service.sandbox_steady = False
    if backend is not None:
        run = sd.new_run(backend, service, new, others)
        service.current_service_deployment = run.arn
    log.info(
        "sandbox_deployment_started",
        service=service.name,
        deployment=new["id"],
        task_definition=task_definition_arn,
        reason=reason,
    )
    return new


def merge_deployment_configuration(current: dict[str, Any] | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """ECS keeps the fields an update does not name; start from ECS's defaults."""
    merged = copy.deepcopy(current or DEFAULT_DEPLOYMENT_CONFIGURATION)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


# ------------------------------------------------------------------------------------------------- tasks


class SandboxContainer:
    """One container of a sandbox task, with the attributes moto's serializer picks for `Container`."""

    def __init__(self, task_arn: str, container_def: dict[str, Any], image: str | None = None) -> None:
        self.container_arn = f"{task_arn.replace(':task/', ':container/')}/{uuid.uuid4()}"
        self.task_arn = task_arn
        self.name = container_def.get("name")
        self.image = image or container_def.get("image")
        self.image_digest: str | None = None
        self.runtime_id: str | None = None
        self.last_status = "PENDING"
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.network_bindings: list[dict[str, Any]] = []
        self.network_interfaces: list[dict[str, Any]] = []
        self.health_status = "UNKNOWN"
        self.cpu = str(container_def.get("cpu", 0))
        self.memory = str(container_def["memory"]) if container_def.get("memory") else None
        self.memory_reservation = (
            str(container_def["memoryReservation"]) if container_def.get("memoryReservation") else None
        )
        self.essential = container_def.get("essential", True)


class SandboxTask(Task):
    """A task the agent started for a service deployment; its status moves only when the agent says so.

    moto's own `Task` drifts RUNNING -> STOPPED on every describe (its state manager); this one keeps a
    plain `last_status`, so `describe_tasks` shows what the container really does.
    """

    def __init__(
        self,
        backend: EC2ContainerServiceBackend,
        cluster: Any,
        service: Service,
        task_definition: Any,
        deployment_id: str,
    ) -> None:
        # Deliberately not calling Task.__init__: it needs an awsvpc network configuration, always creates
        # an ENI, and starts moto's state machine. We set every attribute moto's code and serializer read.
        self.model_name = "ecs::task"
        self._tick = 0
        self._last_status = "PROVISIONING"
        self.id = uuid.uuid4().hex
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.container_instance_arn = None
        self.desired_status = "RUNNING"
        self.task_definition_arn = task_definition.arn
        self.overrides: dict[str, Any] = {}
        self.started_by = deployment_id
        self.tags: list[dict[str, str]] = []
        self.launch_type = service.launch_type or "FARGATE"
        self.platform_version = service.platform_version or ("1.4.0" if self.launch_type == "FARGATE" else None)
        self.platform_family = "Linux" if self.launch_type == "FARGATE" else None
        self.stopped_reason: str | None = None
        self.stop_code: str | None = None
        self.resource_requirements = None
        self.region_name = cluster.region_name
        self._account_id = backend.account_id
        self._backend = backend
        self.attachments: list[dict[str, Any]] = []
        self.group = f"service:{service.name}"
        self.cpu = task_definition.cpu
        self.memory = task_definition.memory
        self.availability_zone = f"{self.region_name}a"
        self.connectivity = "CONNECTED"
        now = utcnow()
        self.created_at = now
        self.connectivity_at = now
        self.pull_started_at = None
        self.pull_stopped_at = None
        self.started_at = None
        self.stopping_at = None
        self.stopped_at = None
        self.execution_stopped_at = None
        self.health_status = "UNKNOWN"
        self.version = 1
        self.network_configuration = copy.deepcopy(service.network_configuration) or None
        self.eni_id: str | None = None
        self.containers = [SandboxContainer(self.task_arn, c) for c in task_definition.container_definitions]  # type: ignore[misc]
        self._attach_eni()

    @property
    def last_status(self) -> str:
        """The status the agent set; no drift on describe."""
        return self._last_status

    @last_status.setter
    def last_status(self, value: str) -> None:
        self._last_status = value
        self.version += 1

    @property
    def status(self) -> str:
        """moto's ManagedState name for last_status."""
        return self._last_status

    @status.setter
    def status(self, value: str) -> None:
        self.last_status = value

    def advance(self) -> None:
        """moto calls this on every describe; a sandbox task does not drift."""

    def _attach_eni(self) -> None:
        """Give an awsvpc task its ENI attachment like ECS does (best effort: the subnet may be gone)."""
        conf = (self.network_configuration or {}).get("awsvpcConfiguration") or {}
        if not conf.get("subnets"):
            return
        try:
            from moto.ec2.models import ec2_backends
            from moto.ec2.utils import random_private_ip

            ec2 = ec2_backends[self._account_id][self.region_name]
            eni = ec2.create_network_interface(
                subnet=conf["subnets"][0],
                private_ip_address=random_private_ip(),
                group_ids=conf.get("securityGroups") or [],
                description=f"arn:aws:ecs:{self.region_name}:{self._account_id}:attachment/{self.id}",
            )
            eni.status = "in-use"
            eni.device_index = 0
        except Exception as exc:  # noqa: BLE001 - a missing subnet must not stop the task
            log.warning("sandbox_eni_not_attached", task=self.id, error=str(exc))
            return
        self.eni_id = eni.id
        self.attachments = [
            {
                "id": str(uuid.uuid4()),
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": conf["subnets"][0]},
                    {"name": "networkInterfaceId", "value": eni.id},
                    {"name": "macAddress", "value": eni.mac_address},
                    {"name": "privateDnsName", "value": eni.private_dns_name},
                    {"name": "privateIPv4Address", "value": eni.private_ip_address},
                ],
            }
        ]

    def release_eni(self) -> None:
        """Detach and delete the task's ENI once it stopped, as ECS does."""
        if not self.eni_id:
            return
        try:
            from moto.ec2.models import ec2_backends

            ec2_backends[self._account_id][self.region_name].delete_network_interface(self.eni_id)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.attachments = [{**a, "status": "DELETED"} for a in self.attachments]
        self.eni_id = None


# ----------------------------------------------------------------------------------------------- patches


def _create_service(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Service:
    """moto's create_service, then the first deployment starts IN_PROGRESS with no tasks, like ECS."""
    service = _ORIGINALS["backend.create_service"](self, *args, **kwargs)
    service.running_count = 0
    service.pending_count = 0
    service.created_at = utcnow()
    service.created_by = f"arn:aws:iam::{self.account_id}:root"
    service.platform_family = "Linux" if service.launch_type == "FARGATE" else None
    service.sandbox_steady = False
    service.sandbox_last_completed = None
    if not getattr(service, "deployment_configuration", None):
        service.deployment_configuration = copy.deepcopy(DEFAULT_DEPLOYMENT_CONFIGURATION)
    if service.deployment_controller.get("type", "ECS") == "ECS":
        service.deployments = [make_deployment(service, service.task_definition)]
        run = sd.new_run(self, service, service.deployments[0], [])
        service.current_service_deployment = run.arn
        log.info(
            "sandbox_service_created",
            service=service.name,
            deployment=service.deployments[0]["id"],
            task_definition=service.task_definition,
        )
    return service


def _update_service(self: EC2ContainerServiceBackend, service_properties: dict[str, Any]) -> Service:
    """moto's update_service, plus a new PRIMARY deployment on a new revision or forceNewDeployment."""
    props = dict(service_properties)
    cluster_str = props.get("cluster", "default")
    name = str(props.get("service", "")).split("/")[-1]
    service = self._get_service(cluster_str, name)  # ServiceNotFoundException before anything changes
    td_str = props.get("task_definition")
    new_td_arn = self.describe_task_definition(td_str).arn if td_str else None
    force = bool(props.get("force_new_deployment"))
    given_config = props.pop("deployment_configuration", None)
    if given_config or props.get("load_balancers") is not None:
        validate_strategy(
            merge_deployment_configuration(getattr(service, "deployment_configuration", None), given_config),
            props.get("load_balancers") if props.get("load_balancers") is not None else service.load_balancers,
            service.deployment_controller,
        )
    netconf_before = copy.deepcopy(service.network_configuration)
    deployments_before = [dict(d) for d in service.deployments or []]  # moto mutates on force
    counts_before = (service.running_count, service.pending_count)

    _ORIGINALS["backend.update_service"](self, props)

    # Undo what moto fakes: it rewrites the deployment id on force, sets running = desired, keeps the raw
    # task definition string. Counts belong to the agent.
    service.deployments = deployments_before
    service.running_count, service.pending_count = counts_before
    if given_config:
        service.deployment_configuration = merge_deployment_configuration(
            getattr(service, "deployment_configuration", None), given_config
        )
    primary = primary_deployment(service)
    current_td = primary["taskDefinition"] if primary else service.task_definition
    service.task_definition = current_td
    if props.get("desired_count") is not None and primary is not None:
        service.deployments = [
            {**d, "desiredCount": service.desired_count, "updatedAt": utcnow()} if d is primary else d
            for d in service.deployments
        ]
        service.sandbox_steady = False
    netconf_changed = service.network_configuration != netconf_before
    if service.deployment_controller.get("type", "ECS") != "ECS":
        if new_td_arn:
            service.task_definition = new_td_arn
        return service
    if (new_td_arn and new_td_arn != current_td) or force or netconf_changed:
        reason = "force_new_deployment" if force and not (new_td_arn and new_td_arn != current_td) else "update"
        keep = reason == "update" and not netconf_changed
        start_deployment(service, new_td_arn or current_td, reason=reason, backend=self, keep_tasks=keep)
    return service


def _list_tasks(
    self: EC2ContainerServiceBackend,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,  # noqa: N803 - moto's parameter name
) -> list[Task]:
    """moto's list_tasks, filtering by serviceName and defaulting to desiredStatus RUNNING like ECS."""
    tasks = _ORIGINALS["backend.list_tasks"](
        self, cluster_str, container_instance, family, started_by, None, desiredStatus or "RUNNING"
    )
    if service_name:
        group = f"service:{service_name.split('/')[-1]}"
        tasks = [t for t in tasks if getattr(t, "group", None) == group]
    return tasks


def _response_create_service(self: Any) -> Any:
    """moto's CreateService handler, keeping the deploymentConfiguration it drops."""
    given = self._get_param("deploymentConfiguration")
    merged = merge_deployment_configuration(None, given)
    validate_strategy(merged, self._get_param("loadBalancers") or [], self._get_param("deploymentController") or {})
    result = _ORIGINALS["response.create_service"](self)
    service = result.result["service"]
    service.deployment_configuration = merged
    # moto drops it; ECS ignores load-balancer health checks this long after a task starts.
    service.health_check_grace_period_seconds = self._get_param("healthCheckGracePeriodSeconds")
    for run in sd.runs_for_service(self.ecs_backend, service):
        run.config = copy.deepcopy(merged)
        run.strategy = sd.strategy_of(merged)
    return result


def validate_strategy(config: dict[str, Any], load_balancers: list[dict[str, Any]], controller: dict[str, Any]) -> None:
    """Refuse what ECS refuses: a traffic strategy without the load balancer it needs, or a bad hook."""
    from moto.ecs.exceptions import InvalidParameterException

    strategy = sd.strategy_of(config)
    if strategy not in sd.STRATEGIES:
        raise InvalidParameterException(f"Invalid deployment strategy: {strategy}.")
    for hook in config.get("lifecycleHooks") or []:
        stages = hook.get("lifecycleStages") or []
        if not stages:
            raise InvalidParameterException("lifecycleStages must be provided for a deployment lifecycle hook.")
        bad = [s for s in stages if s not in sd.HOOK_STAGES]
        if bad:
            raise InvalidParameterException(f"Lifecycle hooks are not supported at stage(s) {', '.join(bad)}.")
        if hook.get("targetType", "AWS_LAMBDA") == "AWS_LAMBDA" and not hook.get("hookTargetArn"):
            raise InvalidParameterException("hookTargetArn must be provided for an AWS_LAMBDA lifecycle hook.")
    if strategy == "ROLLING":
        return
    if (controller or {}).get("type", "ECS") != "ECS":
        raise InvalidParameterException(
            f"The {strategy} deployment strategy requires the ECS deployment controller, not {controller.get('type')}."
        )
    advanced = [lb.get("advancedConfiguration") for lb in load_balancers or [] if lb.get("advancedConfiguration")]
    if not advanced:
        raise InvalidParameterException(
            f"The {strategy} deployment strategy requires a load balancer with an advancedConfiguration "
            "(alternateTargetGroupArn, productionListenerRule, roleArn)."
        )
    for adv in advanced:
        missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not adv.get(k)]
        if missing:
            raise InvalidParameterException(f"advancedConfiguration is missing {', '.join(missing)}.")


def _find_service(backend: EC2ContainerServiceBackend, cluster: str | None, service: str) -> Service:
    """A service by name or ARN (the ARN names its cluster)."""
    if service.startswith("arn:") and service.count("/") >= 2:
        cluster = cluster or service.split("/")[-2]
    return backend._get_service(cluster or "default", service.split("/")[-1])


def _deployment_not_found(arn: str) -> Exception:
    from moto.ecs.exceptions import ECSException

    return ECSException("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")


def _response_list_service_deployments(self: Any) -> Any:
    """ListServiceDeployments: the service's deployments, newest first, filtered and paginated like ECS."""
    from moto.core.responses import ActionResult

    backend = self.ecs_backend
    service = _find_service(backend, self._get_param("cluster"), self._get_param("service"))
    wanted = set(self._get_param("status") or [])
    created = self._get_param("createdAt") or {}
    found = []
    for run in sd.runs_for_service(backend, service):
        if wanted and run.status not in wanted:
            continue
        if created.get("before") and run.created_at.timestamp() >= float(created["before"]):
            continue
        if created.get("after") and run.created_at.timestamp() <= float(created["after"]):
            continue
        found.append(run)
    start = int(self._get_param("nextToken") or 0)
    size = int(self._get_param("maxResults") or 20)
    page = found[start : start + size]
    result: dict[str, Any] = {"serviceDeployments": [r.brief() for r in page]}
    if start + size < len(found):
        result["nextToken"] = str(start + size)
    return ActionResult(result)


def _response_describe_service_deployments(self: Any) -> Any:
    """DescribeServiceDeployments: each ARN's record, or a MISSING failure."""
    from moto.core.responses import ActionResult

    found, failures = [], []
    for arn in self._get_param("serviceDeploymentArns") or []:
        run = sd.find_run(self.ecs_backend, arn)
        if run is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(run.view())
    return ActionResult({"serviceDeployments": found, "failures": failures})


def _response_describe_service_revisions(self: Any) -> Any:
    """DescribeServiceRevisions: each revision a service deployment names, or a MISSING failure."""
    from moto.core.responses import ActionResult

    records = sd.revision_records(self.ecs_backend)
    found, failures = [], []
    for arn in self._get_param("serviceRevisionArns") or []:
        if arn in records:
            found.append(copy.deepcopy(records[arn]))
        else:
            failures.append({"arn": arn, "reason": "MISSING"})
    return ActionResult({"serviceRevisions": found, "failures": failures})


def _response_continue_service_deployment(self: Any) -> Any:
    """ContinueServiceDeployment: resolve a PAUSE hook with CONTINUE or ROLLBACK; the agent acts on it."""
    from moto.core.responses import ActionResult
    from moto.ecs.exceptions import InvalidParameterException

    arn = self._get_param("serviceDeploymentArn")
    hook_id = self._get_param("hookId")
    action = self._get_param("action") or "CONTINUE"
    if action not in ("CONTINUE", "ROLLBACK"):
        raise InvalidParameterException(f"Invalid action {action}: use CONTINUE or ROLLBACK.")
    run = sd.find_run(self.ecs_backend, arn)
    if run is None:
        raise _deployment_not_found(arn)
    hook = run.hook(hook_id)
    if hook is None or hook.target_type != "PAUSE":
        raise InvalidParameterException(f"The service deployment {arn} has no PAUSE lifecycle hook {hook_id}.")
    if hook.status != "AWAITING_ACTION" or run.finished:
        raise InvalidParameterException(
            f"The lifecycle hook {hook_id} is not awaiting action (status {hook.status}, deployment {run.status})."
        )
    if action == "CONTINUE":
        hook.status = "SUCCEEDED"
    else:
        hook.status = "FAILED"
        run.requested = "ROLLBACK"
        run.requested_reason = f"Rollback requested through ContinueServiceDeployment at {hook.stage}."
        run.set_status("ROLLBACK_REQUESTED")
    run.touch()
    log.info("sandbox_hook_resolved", deployment=arn, hook=hook_id, action=action, stage=hook.stage)
    return ActionResult({"serviceDeploymentArn": arn})


def _response_stop_service_deployment(self: Any) -> Any:
    """StopServiceDeployment: ROLLBACK (the only stop type ECS accepts) of a deployment in flight."""
    from moto.core.responses import ActionResult
    from moto.ecs.exceptions import ECSException, InvalidParameterException

    arn = self._get_param("serviceDeploymentArn")
    stop_type = self._get_param("stopType") or "ROLLBACK"
    if stop_type != "ROLLBACK":
        raise InvalidParameterException(f"Invalid stopType {stop_type}: the valid value is ROLLBACK.")
    run = sd.find_run(self.ecs_backend, arn)
    if run is None:
        raise _deployment_not_found(arn)
    if run.finished or run.status.startswith("ROLLBACK"):
        raise ECSException("ConflictException", f"The service deployment {arn} is {run.status}: it cannot be stopped.")
    if run.stage == "CLEAN_UP":
        raise ECSException(
            "ConflictException", f"The service deployment {arn} is in CLEAN_UP: the blue revision is already gone."
        )
    run.requested = "ROLLBACK"
    run.requested_reason = "Rollback requested through StopServiceDeployment."
    run.set_status("ROLLBACK_REQUESTED")
    for hook in run.awaiting():
        hook.status = "FAILED"
    log.info("sandbox_deployment_stop_requested", deployment=arn)
    return ActionResult({"serviceDeploymentArn": arn})


# (target group ARN, target id, port) -> (State, Reason, Description), measured by the data plane (lb.py).
# None: no data plane runs in this process, and moto's "healthy" stands.
TARGET_HEALTH: dict[str, Any] = {"lookup": None}


def _describe_target_health(self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> list[Any]:
    """moto's DescribeTargetHealth, with the health the sandbox's load balancer really measured."""
    statuses = _ORIGINALS["elbv2.describe_target_health"](self, target_group_arn, targets)
    lookup = TARGET_HEALTH["lookup"]
    if lookup is None:
        return statuses
    group = self.target_groups.get(target_group_arn)
    out = []
    for status in statuses:
        if group is not None and status.instance_id in group.targets:
            measured = lookup(target_group_arn, status.instance_id, int(status.port))
            if measured is not None:
                status = copy.copy(status)
                status.status, status.reason, status.description = measured
        out.append(status)
    return out


def _response_call_action(self: Any) -> Any:
    """Every ECS request, serialisation included, sees the backend only between agent steps."""
    with BACKEND_LOCK:
        return _ORIGINALS["response.call_action"](self)


def _statistic(self: Any, stat: str) -> Any:
    """moto's statistics, plus percentiles (p99, p99.9) over the values put one by one, like CloudWatch's."""
    value = _ORIGINALS["cloudwatch.statistic"](self, stat)
    if value is not None or not stat.startswith("p"):
        return value
    try:
        percent = float(stat[1:])
    except ValueError:
        return None
    values = sorted(self.metric_single_values_list)
    if not values or not 0 <= percent <= 100:
        return None
    rank = max(1, math.ceil(percent / 100 * len(values)))  # nearest rank
    return values[rank - 1]


_PATCHES = {
    "backend.create_service": (EC2ContainerServiceBackend, "create_service", _create_service),
    "backend.update_service": (EC2ContainerServiceBackend, "update_service", _update_service),
    "backend.list_tasks": (EC2ContainerServiceBackend, "list_tasks", _list_tasks),
    "response.create_service": (ecs_responses.EC2ContainerServiceResponse, "create_service", _response_create_service),
    "response.call_action": (ecs_responses.EC2ContainerServiceResponse, "call_action", _response_call_action),
    "elbv2.describe_target_health": (ELBv2Backend, "describe_target_health", _describe_target_health),
    "cloudwatch.statistic": (Statistics, "get_statistics_for_type", _statistic),
}

# Operations moto does not have at all: added on install, removed on uninstall.
_ADDITIONS = {
    "list_service_deployments": _response_list_service_deployments,
    "describe_service_deployments": _response_describe_service_deployments,
    "describe_service_revisions": _response_describe_service_revisions,
    "continue_service_deployment": _response_continue_service_deployment,
    "stop_service_deployment": _response_stop_service_deployment,
}


def install() -> None:
    """Patch moto's ECS backend in this process (idempotent)."""
    check_moto_version()
    with BACKEND_LOCK:
        if _ORIGINALS:
            return
        for key, (owner, attr, replacement) in _PATCHES.items():
            _ORIGINALS[key] = getattr(owner, attr)
            setattr(owner, attr, replacement)
        for name, handler in _ADDITIONS.items():
            setattr(ecs_responses.EC2ContainerServiceResponse, name, handler)
    log.debug("sandbox_extension_installed", moto_version=moto.__version__)


def uninstall() -> None:
    """Restore moto's own methods (for tests that want plain moto afterwards)."""
    with BACKEND_LOCK:
        for key, (owner, attr, _replacement) in _PATCHES.items():
            if key in _ORIGINALS and attr in owner.__dict__ and owner.__dict__[attr] is _replacement:
                if key == "response.call_action":
                    delattr(owner, attr)  # inherited from BaseResponse originally
                else:
                    setattr(owner, attr, _ORIGINALS[key])
        for name, handler in _ADDITIONS.items():
            if ecs_responses.EC2ContainerServiceResponse.__dict__.get(name) is handler:
                delattr(ecs_responses.EC2ContainerServiceResponse, name)
        _ORIGINALS.clear()


def installed() -> bool:
    """Whether the patches are in place."""
    return bool(_ORIGINALS)


__all__ = [
    "BACKEND_LOCK",
    "DEFAULT_DEPLOYMENT_CONFIGURATION",
    "TARGET_HEALTH",
    "SandboxContainer",
    "SandboxTask",
    "add_event",
    "ecs_backend",
    "ecs_models",
    "install",
    "installed",
    "primary_deployment",
    "start_deployment",
    "uninstall",
    "validate_strategy",
]
