"""ECS service deployments in the release engineer's words: the strategy update, stages, PAUSE hooks, traffic.

What blue-green, canary and linear need from ECS: update the service with a strategy and PAUSE lifecycle hooks,
see a deployment's lifecycle stage and which hook awaits action (DescribeServiceDeployments), answer a hook
(ContinueServiceDeployment CONTINUE | ROLLBACK), stop a deployment (StopServiceDeployment), and find a deployment
still in flight for a revision (ListServiceDeployments + DescribeServiceRevisions), which is how a restarted
snail resumes judging the hook it left."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.aws.ecs import ServiceView
from orchestrator.aws.errors import aws_call

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext

FINISHED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
ROLLED_BACK = ("ROLLBACK_SUCCESSFUL",)


@dataclass(frozen=True)
class HookView:
    """One lifecycle hook invocation (DeploymentLifecycleHookDetail)."""

    hook_id: str
    status: str
    target_type: str
    timeout_action: str | None
    expires_at: Any = None

    @property
    def awaiting(self) -> bool:
        """True when the hook waits for ContinueServiceDeployment."""
        return self.status == "AWAITING_ACTION"


@dataclass(frozen=True)
class ServiceDeploymentView:
    """What DescribeServiceDeployments says about one service deployment."""

    arn: str
    status: str
    stage: str | None
    target_revision: str | None  # service revision ARN (not a task definition)
    source_revisions: tuple[str, ...]
    green_production: float  # green's requested share of production traffic, percent
    green_test: float
    running: int
    requested: int
    hooks: tuple[HookView, ...]
    rollback_reason: str | None
    breaker: dict[str, Any]
    status_reason: str | None
    raw: dict[str, Any]

    @property
    def finished(self) -> bool:
        """True once ECS is done with it (succeeded, stopped or rolled back)."""
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        """True when the new revision has all production traffic and blue was cleaned up."""
        return self.status == "SUCCESSFUL"

    @property
    def rolled_back(self) -> bool:
        """True when production traffic is back on the source revision."""
        return self.status in ROLLED_BACK

    @property
    def awaiting(self) -> HookView | None:
        """The PAUSE hook awaiting action, if any."""
        return next((h for h in self.hooks if h.awaiting), None)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ServiceDeploymentView:
        """From DescribeServiceDeployments' ServiceDeployment shape."""
        target = d.get("targetServiceRevision") or {}
        return cls(
            arn=d["serviceDeploymentArn"],
            status=d.get("status", ""),
            stage=d.get("lifecycleStage"),
            target_revision=target.get("arn"),
            source_revisions=tuple(r["arn"] for r in d.get("sourceServiceRevisions") or [] if r.get("arn")),
            green_production=float(target.get("requestedProductionTrafficWeight") or 0.0),
            green_test=float(target.get("requestedTestTrafficWeight") or 0.0),
            running=int(target.get("runningTaskCount") or 0),
            requested=int(target.get("requestedTaskCount") or 0),
            hooks=tuple(
                HookView(
                    h.get("hookId", ""),
                    h.get("status", ""),
                    h.get("targetType", ""),
                    h.get("timeoutAction"),
                    h.get("expiresAt"),
                )
                for h in d.get("lifecycleHookDetails") or []
            ),
            rollback_reason=(d.get("rollback") or {}).get("reason"),
            breaker=d.get("deploymentCircuitBreaker") or {},
            status_reason=d.get("statusReason"),
            raw=d,
        )


class DeploymentsClient:
    """ECS's service deployments for one AWS context."""

    def __init__(self, aws: AwsContext | None = None, client: Any = None) -> None:
        if client is None and aws is None:
            raise ValueError("DeploymentsClient needs an AwsContext or an ECS client")
        self._ecs: Any = client if client is not None else aws.client("ecs")  # type: ignore[union-attr]

    def update_service(
        self, cluster: str, service: str, revision_arn: str | None, configuration: dict[str, Any]
    ) -> tuple[ServiceView, str | None]:
        """Point the service at a revision with this deploymentConfiguration; the service and the ARN of the
        service deployment ECS started (None when nothing started)."""
        kwargs: dict[str, Any] = {"cluster": cluster, "service": service, "deploymentConfiguration": configuration}
        if revision_arn:
            kwargs["taskDefinition"] = revision_arn
        with aws_call("ecs:UpdateService"):
            out = self._ecs.update_service(**kwargs)["service"]
        return ServiceView.from_api(out), out.get("currentServiceDeployment")

    def describe(self, arn: str) -> ServiceDeploymentView | None:
        """One service deployment, or None when ECS does not know it."""
        with aws_call("ecs:DescribeServiceDeployments"):
            found = self._ecs.describe_service_deployments(serviceDeploymentArns=[arn]).get("serviceDeployments")
        return ServiceDeploymentView.from_api(found[0]) if found else None

    def in_flight(self, cluster: str, service: str) -> list[str]:
        """ARNs of the service's deployments still PENDING or IN_PROGRESS (or rolling back), newest first."""
        with aws_call("ecs:ListServiceDeployments"):
            out = self._ecs.list_service_deployments(
                cluster=cluster, service=service, status=["PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED"]
            )
        return [d["serviceDeploymentArn"] for d in out.get("serviceDeployments", [])]

    def recent(self, cluster: str, service: str, limit: int = 5) -> list[dict[str, Any]]:
        """The service's newest deployments as ListServiceDeployments summarises them."""
        with aws_call("ecs:ListServiceDeployments"):
            out = self._ecs.list_service_deployments(cluster=cluster, service=service, maxResults=limit)
        return list(out.get("serviceDeployments", []))

    def task_definition_of(self, service_revision_arn: str) -> str | None:
        """The task definition a service revision runs."""
        with aws_call("ecs:DescribeServiceRevisions"):
            found = self._ecs.describe_service_revisions(serviceRevisionArns=[service_revision_arn]).get(
                "serviceRevisions"
            )
        return found[0].get("taskDefinition") if found else None

    def answer(self, arn: str, hook_id: str, action: str) -> None:
        """ContinueServiceDeployment: CONTINUE or ROLLBACK the hook awaiting action."""
        with aws_call("ecs:ContinueServiceDeployment"):
            self._ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook_id, action=action)

    def stop(self, arn: str) -> None:
        """StopServiceDeployment ROLLBACK: production back to the source revision."""
        with aws_call("ecs:StopServiceDeployment"):
            self._ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
