"""ECS service deployments (the ServiceDeployment resource) as the sandbox keeps them.

ECS records every service deployment: its source and target service revisions, status, lifecycle stage,
lifecycle hooks and circuit breaker. moto has none of it, so the extension keeps one `ServiceDeploymentRun`
per deployment in the backend (`runs(backend)`) and answers ListServiceDeployments,
DescribeServiceDeployments, ContinueServiceDeployment and StopServiceDeployment from them; the agent
(`strategies.py`) moves them through their stages. `view()` is exactly the shape ECS returns
(botocore's `ServiceDeployment`): nothing the sandbox keeps for itself leaks into a response.

Where ECS's documentation leaves a choice, the sandbox's is stated here once:
- A PAUSE hook without a `timeoutConfiguration` times out after `DEFAULT_HOOK_TIMEOUT_MINUTES` with ROLLBACK.
- For CANARY and LINEAR, hooks at PRODUCTION_TRAFFIC_SHIFT run after each partial shift (the canary slice,
  each linear step below 100 %), then the step's bake time runs; for BLUE_GREEN they run once after the shift.
- AWS_LAMBDA hooks are not invoked (the sandbox has no Lambda data plane): they succeed at once, with an event.
- A hook still awaiting action when its deployment ends or turns back (superseded by a newer deployment,
  stopped, rolled back, finished) ends FAILED: ECS answers ContinueServiceDeployment only for a hook in
  AWAITING_ACTION on an IN_PROGRESS deployment, so a deployment that no longer runs has no hook awaiting
  action, and its documented hook states (AWAITING_ACTION, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT) leave
  FAILED as the one that says "not continued".
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core.utils import utcnow

STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
TRAFFIC_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")
STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
)
HOOK_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
)
FINISHED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
# Statuses in which a deployment no longer waits on a hook: it has finished, or it is going back to blue.
HOOKS_ENDED = (*FINISHED, "STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
DEFAULT_HOOK_TIMEOUT_MINUTES = 60
DEFAULT_CANARY = {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 10}
DEFAULT_LINEAR = {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}


def strategy_of(config: dict[str, Any] | None) -> str:
    """The deployment strategy a deploymentConfiguration names (ROLLING when it names none)."""
    return str((config or {}).get("strategy") or "ROLLING")


def production_steps(config: dict[str, Any]) -> list[tuple[float, float]]:
    """The production traffic steps: (green percent, bake minutes after the step) up to 100 %."""
    strategy = strategy_of(config)
    if strategy == "CANARY":
        canary = {**DEFAULT_CANARY, **(config.get("canaryConfiguration") or {})}
        percent = float(canary["canaryPercent"])
        if percent >= 100:
            return [(100.0, 0.0)]
        return [(percent, float(canary["canaryBakeTimeInMinutes"])), (100.0, 0.0)]
    if strategy == "LINEAR":
        linear = {**DEFAULT_LINEAR, **(config.get("linearConfiguration") or {})}
        step = float(linear["stepPercent"])
        bake = float(linear["stepBakeTimeInMinutes"])
        steps: list[tuple[float, float]] = []
        percent = 0.0
        while percent + step < 100 - 1e-9:
            percent = round(percent + step, 1)
            steps.append((percent, bake))
        steps.append((100.0, 0.0))  # "This bake time is not applied after reaching 100 percent traffic."
        return steps
    return [(100.0, 0.0)]


@dataclass
class Hook:
    """One lifecycle hook invocation at one stage (ECS's DeploymentLifecycleHookDetail)."""

    hook_id: str
    stage: str
    target_type: str
    target_arn: str | None
    status: str
    expires_at: datetime
    expires_mono: float
    timeout_action: str
    round_key: str = ""  # "<stage>" or "<stage>#<step>": which invocation of the stage this hook belongs to

    def view(self) -> dict[str, Any]:
        """The DeploymentLifecycleHookDetail ECS returns."""
        out: dict[str, Any] = {
            "hookId": self.hook_id,
            "targetType": self.target_type,
            "status": self.status,
            "expiresAt": self.expires_at,
            "timeoutAction": self.timeout_action,
        }
        if self.target_arn and self.target_type != "PAUSE":
            out["targetArn"] = self.target_arn
        return out


@dataclass
class Revision:
    """A service revision taking part in a deployment, with what ECS counts on it."""

    arn: str
    deployment_id: str
    task_definition: str
    requested: int = 0
    running: int = 0
    pending: int = 0
    test_weight: float = 0.0
    production_weight: float = 0.0

    def view(self) -> dict[str, Any]:
        """ECS's ServiceRevisionSummary."""
        return {
            "arn": self.arn,
            "requestedTaskCount": self.requested,
            "runningTaskCount": self.running,
            "pendingTaskCount": self.pending,
            "requestedTestTrafficWeight": self.test_weight,
            "requestedProductionTrafficWeight": self.production_weight,
        }


@dataclass
class ServiceDeploymentRun:
    """One service deployment: what ECS shows of it, and what the agent needs to drive it."""

    arn: str
    service_arn: str
    cluster_arn: str
    service_name: str
    cluster_name: str
    strategy: str
    config: dict[str, Any]
    target: Revision
    sources: list[Revision]
    status: str = "PENDING"
    status_reason: str | None = None
    stage: str | None = None
    hooks: list[Hook] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    rollback: dict[str, Any] | None = None
    breaker_failures: int = 0
    breaker_threshold: int = 0
    breaker_status: str = "DISABLED"
    alarm_status: str = "DISABLED"
    triggered_alarms: list[str] = field(default_factory=list)
    # What the agent keeps between rounds (never in a response).
    requested: str | None = None  # ROLLBACK | STOP, asked through the API
    requested_reason: str | None = None
    stage_entered: float | None = None  # agent clock when the current stage (or step) began
    hooks_done_for: str | None = None  # "<stage>#<step>" whose hooks are resolved
    step: int = 0  # production traffic step index
    step_baked_from: float | None = None
    shifted_step: int = -1  # the production traffic step last applied to the listener rule
    rollback_deployment_id: str | None = None  # ROLLING: the deployment that brings the source revision back
    blue_target_group: str | None = None
    green_target_group: str | None = None
    stages_seen: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """SUCCESSFUL, STOPPED or a finished rollback."""
        return self.status in FINISHED

    @property
    def uses_traffic(self) -> bool:
        """A BLUE_GREEN, LINEAR or CANARY deployment with a revision to shift traffic away from."""
        return self.strategy in TRAFFIC_STRATEGIES and bool(self.sources)

    def touch(self) -> None:
        """Mark the record updated now."""
        self.updated_at = utcnow()

    def set_status(self, status: str, reason: str | None = None) -> None:
        """Move to `status` (with ECS's timestamps for finishing and stopping)."""
        self.status = status
        if reason is not None:
            self.status_reason = reason
        now = utcnow()
        if status == "IN_PROGRESS" and self.started_at is None:
            self.started_at = now
        if status in FINISHED:
            self.finished_at = self.finished_at or now
            if self.alarm_status == "MONITORING":
                self.alarm_status = "MONITORING_COMPLETE"
        if status == "STOPPED":
            self.stopped_at = self.stopped_at or now
        if status in HOOKS_ENDED:
            self.end_hooks()
        self.updated_at = now

    def end_hooks(self) -> None:
        """End every hook still awaiting action (FAILED): the deployment will not continue past it."""
        for hook in self.awaiting():
            hook.status = "FAILED"

    def awaiting(self) -> list[Hook]:
        """Hooks waiting for ContinueServiceDeployment."""
        return [h for h in self.hooks if h.status in ("AWAITING_ACTION", "IN_PROGRESS")]

    def hook(self, hook_id: str) -> Hook | None:
        """The hook with `hook_id`, if this deployment ever ran it."""
        return next((h for h in self.hooks if h.hook_id == hook_id), None)

    def view(self) -> dict[str, Any]:
        """The ServiceDeployment ECS returns from DescribeServiceDeployments."""
        out: dict[str, Any] = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "sourceServiceRevisions": [r.view() for r in self.sources],
            "targetServiceRevision": self.target.view(),
            "status": self.status,
            "deploymentConfiguration": copy.deepcopy(self.config),
            "deploymentCircuitBreaker": {
                "status": self.breaker_status,
                "failureCount": self.breaker_failures,
                "threshold": self.breaker_threshold,
            },
        }
        if self.started_at:
            out["startedAt"] = self.started_at
        if self.finished_at:
            out["finishedAt"] = self.finished_at
        if self.stopped_at:
            out["stoppedAt"] = self.stopped_at
        if self.status_reason:
            out["statusReason"] = self.status_reason
        if self.stage:
            out["lifecycleStage"] = self.stage
        current = [h.view() for h in self.hooks if h.stage == self.stage]
        if current:
            out["lifecycleHookDetails"] = current
        if self.rollback:
            out["rollback"] = dict(self.rollback)
        alarms = self.config.get("alarms") or {}
        if alarms:
            out["alarms"] = {
                "status": self.alarm_status,
                "alarmNames": list(alarms.get("alarmNames") or []),
                "triggeredAlarmNames": list(self.triggered_alarms),
            }
        return out

    def brief(self) -> dict[str, Any]:
        """The ServiceDeploymentBrief ECS returns from ListServiceDeployments."""
        out: dict[str, Any] = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status,
        }
        if self.started_at:
            out["startedAt"] = self.started_at
        if self.finished_at:
            out["finishedAt"] = self.finished_at
        if self.status_reason:
            out["statusReason"] = self.status_reason
        return out


# -------------------------------------------------------------------------------------------- the store


def runs(backend: Any) -> dict[str, ServiceDeploymentRun]:
    """Every service deployment of one moto ECS backend, by ARN (reset with the backend)."""
    store = getattr(backend, "sandbox_service_deployments", None)
    if store is None:
        store = {}
        backend.sandbox_service_deployments = store
    return store


def revision_arns(backend: Any) -> dict[str, str]:
    """Service revision ARN per deployment id."""
    store = getattr(backend, "sandbox_service_revisions", None)
    if store is None:
        store = {}
        backend.sandbox_service_revisions = store
    return store


def _short_id() -> str:
    return uuid.uuid4().hex[:22]


def revision_records(backend: Any) -> dict[str, dict[str, Any]]:
    """ECS's ServiceRevision per revision ARN (what DescribeServiceRevisions returns)."""
    store = getattr(backend, "sandbox_service_revision_records", None)
    if store is None:
        store = {}
        backend.sandbox_service_revision_records = store
    return store


def revision_arn_for(backend: Any, service: Any, deployment: dict[str, Any]) -> str:
    """The service revision ARN of a deployment (made once, like ECS's), recording the revision itself."""
    arns = revision_arns(backend)
    if deployment["id"] not in arns:
        arn = (
            f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-revision/"
            f"{service.cluster_name}/{service.name}/{_short_id()}"
        )
        arns[deployment["id"]] = arn
        images = []
        try:
            task_def = backend.describe_task_definition(deployment["taskDefinition"])
            for c in task_def.container_definitions:
                image = str(c.get("image", ""))
                entry = {"containerName": c.get("name"), "image": image}
                if "@sha256:" in image:
                    entry["imageDigest"] = image.split("@", 1)[1]
                images.append(entry)
        except Exception:  # noqa: BLE001 - a deregistered revision: no images to report
            pass
        record: dict[str, Any] = {
            "serviceRevisionArn": arn,
            "serviceArn": service.arn,
            "clusterArn": f"arn:aws:ecs:{service.region_name}:{backend.account_id}:cluster/{service.cluster_name}",
            "taskDefinition": deployment["taskDefinition"],
            "launchType": deployment.get("launchType") or service.launch_type,
            "loadBalancers": copy.deepcopy(getattr(service, "load_balancers", None) or []),
            "containerImages": images,
            "guardDutyEnabled": False,
            "createdAt": deployment.get("createdAt") or utcnow(),
        }
        for key in ("platformVersion", "platformFamily", "networkConfiguration"):
            if deployment.get(key):
                record[key] = copy.deepcopy(deployment[key])
        revision_records(backend)[arn] = record
    return arns[deployment["id"]]


def runs_for_service(backend: Any, service: Any) -> list[ServiceDeploymentRun]:
    """The service's deployments, newest first."""
    found = [r for r in runs(backend).values() if r.service_arn == service.arn]
    return sorted(found, key=lambda r: r.created_at, reverse=True)


def current_run(backend: Any, service: Any) -> ServiceDeploymentRun | None:
    """The service's newest deployment that has not finished."""
    return next((r for r in runs_for_service(backend, service) if not r.finished), None)


def new_run(backend: Any, service: Any, target: dict[str, Any], sources: list[dict[str, Any]]) -> ServiceDeploymentRun:
    """Record a new service deployment from `sources` (deployment records) to `target`; stop the one in flight."""
    for previous in runs_for_service(backend, service):
        if not previous.finished:
            previous.set_status("STOPPED", "Service deployment stopped: a newer service deployment started.")
    config = copy.deepcopy(getattr(service, "deployment_configuration", None) or {})
    strategy = strategy_of(config)
    desired = int(service.desired_count or 0)
    run = ServiceDeploymentRun(
        arn=(
            f"arn:aws:ecs:{service.region_name}:{backend.account_id}:service-deployment/"
            f"{service.cluster_name}/{service.name}/{_short_id()}"
        ),
        service_arn=service.arn,
        cluster_arn=f"arn:aws:ecs:{service.region_name}:{backend.account_id}:cluster/{service.cluster_name}",
        service_name=service.name,
        cluster_name=service.cluster_name,
        strategy=strategy,
        config=config,
        target=Revision(revision_arn_for(backend, service, target), target["id"], target["taskDefinition"], desired),
        sources=[
            Revision(
                revision_arn_for(backend, service, s),
                s["id"],
                s["taskDefinition"],
                int(s.get("desiredCount", 0)),
                int(s.get("runningCount", 0)),
                int(s.get("pendingCount", 0)),
                100.0,
                100.0,
            )
            for s in sources
        ],
    )
    runs(backend)[run.arn] = run
    return run


def find_run(backend: Any, arn: str) -> ServiceDeploymentRun | None:
    """The deployment with this ARN in this backend."""
    return runs(backend).get(arn)


def hook_expiry(minutes: float, now_mono: float, minute: float) -> tuple[datetime, float]:
    """(wall-clock expiresAt, agent-clock deadline) for a hook timing out after `minutes`."""
    return utcnow() + timedelta(minutes=minutes), now_mono + minutes * minute


__all__ = [
    "DEFAULT_HOOK_TIMEOUT_MINUTES",
    "FINISHED",
    "HOOKS_ENDED",
    "HOOK_STAGES",
    "STAGES",
    "STRATEGIES",
    "TRAFFIC_STRATEGIES",
    "Hook",
    "Revision",
    "ServiceDeploymentRun",
    "current_run",
    "find_run",
    "hook_expiry",
    "new_run",
    "production_steps",
    "revision_arn_for",
    "revision_records",
    "runs",
    "runs_for_service",
    "strategy_of",
]
