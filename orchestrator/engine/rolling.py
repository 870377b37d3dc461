"""The rolling deployer: ECS's rolling update, then the phase's gates and the bake.

The service is pointed at the revision (UpdateService), ECS replaces the tasks, and the engine's own gates judge
the new revision: ecs-rollout until the rollout completes, then the others in order, then the bake. On a service a
traffic strategy left configured (its strategy and PAUSE hooks), the update also resets them to ROLLING without
hooks, or the rolling update would pause at a hook nobody answers."""

from __future__ import annotations

from orchestrator.aws.ecs import ServiceView, short_name
from orchestrator.engine.deployer import ROLLING, DeployContext
from orchestrator.engine.results import PhasePassed, PhaseResult
from orchestrator.engine.strategies import deployment_configuration
from orchestrator.trail.kinds import EventKind as K


def left_by_strategy(service: ServiceView, revision_arn: str) -> bool:
    """True when a traffic strategy left the service configured (a strategy other than ROLLING, or PAUSE hooks)
    and the update is still to happen."""
    cfg = service.deployment_configuration or {}
    return service.task_definition != revision_arn and (
        cfg.get("strategy", "ROLLING") != "ROLLING" or bool(cfg.get("lifecycleHooks"))
    )


class RollingDeployer:
    """UpdateService, then the gates and the bake."""

    name = ROLLING

    def deploy(self, ctx: DeployContext) -> PhaseResult:
        """The phase's result; never raises."""
        if ctx.service is not None and left_by_strategy(ctx.service, ctx.revision_arn):
            try:
                return self._after_strategy(ctx, ctx.service)
            except BaseException as exc:  # noqa: BLE001 - a bug here must still end in the rollback decision
                return ctx.after_update(exc)
        return self._plain(ctx)

    def _plain(self, ctx: DeployContext) -> PhaseResult:
        arn, journal, spec = ctx.revision_arn, ctx.journal, ctx.spec
        before = ctx.service.task_definition if ctx.service else None
        if before is not None and before != arn:
            try:
                with journal.step("update_service", **{"from": before, "to": arn}) as r:
                    after = ctx.ecs.update_service(spec.cluster, spec.name, arn)
                    r["deployment"] = after.primary.id if after.primary else None
            except BaseException as exc:  # noqa: BLE001 - did the update take effect? ECS says.
                return ctx.after_update(exc)
        try:
            if before is not None and before != arn:
                journal.event(
                    K.SERVICE_UPDATED, f"service {spec.name} -> {short_name(arn)}", previous=before, revision=arn
                )
            elif before == arn:
                journal.event(K.SERVICE_UNCHANGED, f"service already runs {short_name(arn)}; gating it again")
        except BaseException as exc:  # noqa: BLE001 - after the update, anything at all ends in a rollback
            return ctx.failed_after(exc)
        seen: list[ServiceView] = []  # the bake's look at the service: the next phase starts from it
        failure = ctx.judged(ctx.plan.gates, seen=seen, early=before is not None and before != arn)
        if failure is not None:
            return failure
        return PhasePassed(ctx.phase.name, arn, ctx.image, service=seen[-1] if seen else None)

    def _after_strategy(self, ctx: DeployContext, service: ServiceView) -> PhaseResult:
        """A rolling phase after a traffic strategy: strategy ROLLING and no hooks, then the gates and the bake."""
        arn, journal, spec = ctx.revision_arn, ctx.journal, ctx.spec
        cfg = deployment_configuration(
            ctx.phase.strategy, ctx.plan.gates, spec.circuit_breaker, service, ctx.owned_alarms
        )
        try:
            with journal.step("update_service", **{"from": service.task_definition, "to": arn}) as r:
                after, started = ctx.deployments.update_service(spec.cluster, spec.name, arn, cfg)
                r["deployment"] = after.primary.id if after.primary else None
                r["service_deployment"] = started
        except BaseException as exc:  # noqa: BLE001 - did it take effect? ECS says
            return ctx.after_update(exc)
        journal.event(
            K.SERVICE_UPDATED,
            f"service {spec.name} -> {short_name(arn)} (rolling; the previous strategy's hooks removed)",
            previous=service.task_definition,
            revision=arn,
        )
        failure = ctx.judged(ctx.plan.gates, early=True)
        if failure is not None:
            return failure
        return PhasePassed(ctx.phase.name, arn, ctx.image)
